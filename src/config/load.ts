/**
 * Loads config from a file (YAML, JSON, or a JS module exporting the object) or from an object passed in code,
 * and runs both passes: shape (zod schema) and meaning (`resolve.ts`). All problems come back together as one
 * `ConfigError`, each located as `file:line  key.path: message (got value)`.
 */
import type { z } from 'zod'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { LineCounter, parseDocument, isNode, type Document } from 'yaml'
import { ProxyError } from '../errors.js'
import { configSchema, type ParsedConfig, type PorticoConfig } from './schema.js'
import { resolveConfig } from './resolve.js'
import { loadHandlerModules } from './handler-modules.js'
import type { ConfigIssue, ResolvedConfig } from './resolved.js'

/** One located problem. */
export interface LocatedIssue extends ConfigIssue {
  file?: string
  line?: number
}

/** Thrown when a config fails validation. `issues` lists every problem; `message` prints them one per line. */
export class ConfigError extends ProxyError {
  readonly issues: LocatedIssue[]
  constructor (issues: LocatedIssue[], headline = 'invalid configuration') {
    super('PORTICO_ERR_CONFIG_INVALID', `${headline}\n${issues.map(formatIssue).join('\n')}`)
    this.name = 'ConfigError'
    this.issues = issues
  }
}

/** `file:line  key.path: message (got value)`. */
export function formatIssue (issue: LocatedIssue): string {
  const where = issue.file === undefined ? '' : `${issue.file}${issue.line === undefined ? '' : `:${issue.line}`}  `
  const key = issue.path.length === 0 ? '(top level)' : issue.path.join('.')
  const got = issue.value === undefined ? '' : ` (got ${describeValue(issue.value)})`
  return `${where}${key}: ${issue.message}${got}`
}

function describeValue (v: unknown): string {
  if (typeof v === 'function') return 'a function'
  try {
    const s = JSON.stringify(v)
    if (s === undefined) return String(v)
    return s.length > 80 ? `${s.slice(0, 77)}...` : s
  } catch {
    return String(v)
  }
}

interface Source { file?: string, doc?: Document, lines?: LineCounter }

/**
 * Validates an options object (as passed to `createProxy`) and resolves it, synchronously. Handlers must be
 * functions here; module paths need `loadConfigObject`. Throws ConfigError.
 */
export function loadConfigObjectSync (input: unknown, options: { baseDir?: string } = {}): ResolvedConfig {
  const parsed = parseShape(input, {})
  const result = resolveConfig(parsed, { baseDir: options.baseDir ?? process.cwd() })
  if ('issues' in result) throw new ConfigError(result.issues)
  return result.config
}

/** Validates an options object and resolves it, loading handler modules named by path. Throws ConfigError. */
export async function loadConfigObject (input: unknown, options: { baseDir?: string, source?: Source } = {}): Promise<ResolvedConfig> {
  const source = options.source ?? {}
  const parsed = parseShape(input, source)
  const baseDir = options.baseDir ?? process.cwd()
  const modules = await loadHandlerModules(parsed, baseDir)
  const result = resolveConfig(parsed, { baseDir, modules })
  if ('issues' in result) throw new ConfigError(result.issues.map((i) => locate(i, source)))
  return result.config
}

type ZodIssue = z.core.$ZodIssue

/**
 * A union whose input matched the type of exactly one option (`cache: { maxSize: lots }` against
 * `boolean | {...}`) reports that option's own issues, which name the key at fault, instead of "Invalid input".
 */
function flattenUnions (list: readonly ZodIssue[], base: PropertyKey[]): ZodIssue[] {
  const out: ZodIssue[] = []
  for (const i of list) {
    const path = [...base, ...i.path]
    if (i.code === 'invalid_union' && Array.isArray(i.errors)) {
      const near = i.errors.filter((branch) => branch.length > 0 && !branch.every((b) => b.code === 'invalid_type' && b.path.length === 0))
      if (near.length === 1) {
        out.push(...flattenUnions(near[0], path))
        continue
      }
      // Several branches came close: the one whose every issue is inside a key it knows (the input has its shape)
      // is the one meant, when exactly one is such.
      const inside = near.filter((branch) => branch.every((b) => !offShape(b)))
      if (inside.length === 1) {
        out.push(...flattenUnions(inside[0], path))
        continue
      }
    }
    out.push({ ...i, path } as ZodIssue)
  }
  return out
}

/** An issue that says the input is not of this branch's shape: at its root, an unknown key, or a missing one. */
function offShape (issue: ZodIssue): boolean {
  if (issue.path.length === 0 || issue.code === 'unrecognized_keys') return true
  return issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined
}

function parseShape (input: unknown, source: Source): ParsedConfig {
  const parsed = configSchema.safeParse(input, { reportInput: true })
  if (!parsed.success) {
    const issues: LocatedIssue[] = []
    for (const i of flattenUnions(parsed.error.issues, [])) {
      const at = i.path.filter((p): p is string | number => typeof p !== 'symbol')
      if (i.code === 'unrecognized_keys') {
        // One line per unknown key, pointing at the key itself (a typo is the usual cause).
        for (const key of i.keys) issues.push(locate({ path: [...at, key], message: 'unknown key' }, source))
        continue
      }
      issues.push(locate({ path: at, message: cleanMessage(i.message), value: 'input' in i ? (i as { input?: unknown }).input : undefined }, source))
    }
    throw new ConfigError(issues)
  }
  return parsed.data
}

/**
 * Reads and validates a config file. `.yaml`/`.yml`/`.json` are parsed as YAML 1.2 (JSON is a subset, so line
 * numbers work for both); `.mjs`/`.js`/`.cjs`/`.ts` are imported and their default export is used (`.ts` needs a
 * Node version that strips types). Handler module paths are relative to the file's directory.
 */
export async function loadConfigFile (file: string): Promise<ResolvedConfig> {
  const abs = path.resolve(file)
  const shown = path.relative(process.cwd(), abs) || abs
  const baseDir = path.dirname(abs)
  if (/\.(mjs|cjs|js|mts|ts)$/.test(abs)) {
    let mod: { default?: unknown }
    try {
      mod = await import(pathToFileURL(abs).href)
    } catch (err) {
      throw new ConfigError([{ file: shown, path: [], message: `cannot load config module: ${(err as Error).message}` }], 'cannot read configuration')
    }
    return loadConfigObject(mod.default, { baseDir, source: { file: shown } })
  }
  let text: string
  try {
    text = await readFile(abs, 'utf8')
  } catch (err) {
    throw new ConfigError([{ file: shown, path: [], message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }], 'cannot read configuration')
  }
  return loadConfigText(text, { file: shown, baseDir })
}

/** Parses and validates YAML/JSON text. */
export async function loadConfigText (text: string, options: { file?: string, baseDir?: string } = {}): Promise<ResolvedConfig> {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({
      file: options.file,
      line: e.linePos?.[0]?.line ?? (e.pos ? lines.linePos(e.pos[0]).line : undefined),
      path: [],
      message: `YAML syntax: ${e.message.split('\n')[0]}`
    })), 'cannot parse configuration')
  }
  let data: unknown
  try {
    // toJS resolves aliases: an unresolved one, or an alias bomb over yaml's maxAliasCount, throws here.
    data = doc.toJS({ maxAliasCount: 100 }) ?? {}
  } catch (err) {
    throw new ConfigError([{ file: options.file, path: [], message: `YAML: ${(err as Error).message.split('\n')[0]}` }], 'cannot parse configuration')
  }
  return loadConfigObject(data, { baseDir: options.baseDir, source: { file: options.file, doc, lines } })
}

function locate (issue: ConfigIssue, source: Source): LocatedIssue {
  const out: LocatedIssue = { ...issue, file: source.file }
  if (source.doc === undefined || source.lines === undefined) return out
  // The deepest node that exists on the path: a missing key is reported at its parent.
  for (let n = issue.path.length; n >= 0; n--) {
    const node = source.doc.getIn(issue.path.slice(0, n), true)
    if (isNode(node) && node.range) {
      out.line = source.lines.linePos(node.range[0]).line
      break
    }
    // A key path into a map: point at the key when the value is missing or scalar-less.
    if (n === issue.path.length && n > 0) {
      const parent = source.doc.getIn(issue.path.slice(0, n - 1), true) as { items?: { key: { value?: unknown, range?: [number, number, number] } }[] } | undefined
      const pair = parent?.items?.find((it) => it.key?.value === issue.path[n - 1])
      if (pair?.key.range) {
        out.line = source.lines.linePos(pair.key.range[0]).line
        break
      }
    }
  }
  return out
}

function cleanMessage (msg: string): string {
  return msg.replace(/^Invalid input: /, '')
}

export type { PorticoConfig }
