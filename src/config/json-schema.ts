/**
 * The config's JSON Schema, generated from the zod schema (zod 4's `toJSONSchema`, input side: durations and sizes
 * as written, "5s" or a number). Editors use it for completion and checks (`# yaml-language-server: $schema=...` at
 * the top of portico.yaml); `portico schema` prints it and portico.schema.json is its committed copy, which a test
 * keeps equal to this. Handlers and hooks (functions, in code only) cannot be described and accept anything.
 */
import { z } from 'zod'
import { configSchema } from './schema.js'

/** Formats JSON Schema defines; zod also writes its own ("starts_with", beside a pattern that says the same). */
const STANDARD_FORMATS = new Set(['date-time', 'date', 'time', 'duration', 'email', 'idn-email', 'hostname', 'idn-hostname', 'ipv4', 'ipv6', 'uri', 'uri-reference', 'iri', 'iri-reference', 'uuid', 'uri-template', 'json-pointer', 'relative-json-pointer', 'regex'])

/** Drops non-standard `format` keywords (validators and editors warn about them; the pattern beside them stays). */
function standardFormats (node: unknown): unknown {
  if (Array.isArray(node)) return node.map(standardFormats)
  if (node === null || typeof node !== 'object') return node
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(node)) {
    if (k === 'format' && typeof v === 'string' && !STANDARD_FORMATS.has(v)) continue
    out[k] = standardFormats(v)
  }
  return out
}

/** The JSON Schema (draft 2020-12) of a Portico config file. */
export function configJsonSchema (): Record<string, unknown> {
  const generated = standardFormats(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' })) as Record<string, unknown>
  return {
    $schema: generated.$schema,
    $id: 'https://portico.dev/portico.schema.json',
    title: 'Portico configuration',
    description: 'A portico.yaml (or .json) config file. Reference: docs/config.md.',
    ...Object.fromEntries(Object.entries(generated).filter(([k]) => k !== '$schema'))
  }
}

/** The schema as committed: pretty JSON with a trailing newline. */
export function configJsonSchemaText (): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`
}
