/**
 * The committed JSON Schema (portico.schema.json) is the one the zod schema generates, and editors are pointed at
 * it from the bundled portico.yaml.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { parse } from 'yaml'
import { configJsonSchema, configJsonSchemaText } from '../../src/config/json-schema.js'
import { ROOT } from '../helpers/servers.js'

test('portico.schema.json is the schema the config generates (regenerate: node bin/portico.js schema > portico.schema.json)', () => {
  assert.equal(readFileSync(path.join(ROOT, 'portico.schema.json'), 'utf8'), configJsonSchemaText())
})

test('the schema describes the config: closed objects, the short form, units as written, every top-level key', () => {
  const s = configJsonSchema() as { $schema: string, additionalProperties: boolean, properties: Record<string, { anyOf?: unknown[], additionalProperties?: unknown }> }
  assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema')
  assert.equal(s.additionalProperties, false, 'unknown keys are errors, as in the loader')
  for (const key of ['listen', 'upstreams', 'routes', 'pools', 'cache', 'admin', 'tracing', 'workers', 'securityHeaders', 'rateLimit']) assert.ok(key in s.properties, key)
  assert.doesNotMatch(JSON.stringify(s), /"format":"starts_with"/, 'only formats JSON Schema defines')
  assert.ok(JSON.stringify(s.properties.routes).includes('"pattern":"^\\\\/.*"'), 'paths still must start with "/"')
  const timeouts = JSON.stringify(s.properties.timeouts)
  assert.match(timeouts, /"connect":\{"type":\["number","string"\]\}/, 'a duration may be a number or "5s"')
})

test('the bundled portico.yaml points editors at the schema', () => {
  const first = readFileSync(path.join(ROOT, 'portico.yaml'), 'utf8').split('\n')[0]
  assert.equal(first, '# yaml-language-server: $schema=./portico.schema.json')
})

/** The committed schema, compiled by a standard JSON Schema validator (what editors and CI linters use). */
function schemaValidator (): { validate: (v: unknown) => boolean, errors: () => string, topLevel: Set<string> } {
  const schema = JSON.parse(readFileSync(path.join(ROOT, 'portico.schema.json'), 'utf8')) as { properties: Record<string, unknown> }
  // strict off: the schema's "uri" format is standard but ajv needs a plugin to check it; unknown formats are not errors.
  const ajv = new Ajv2020({ allErrors: true, strict: false, logger: false })
  const compiled = ajv.compile(schema)
  return {
    validate: (v) => compiled(v),
    errors: () => JSON.stringify(compiled.errors),
    topLevel: new Set(Object.keys(schema.properties))
  }
}

test('a standard validator accepts every bundled config against portico.schema.json, and refuses an invalid one', () => {
  const v = schemaValidator()
  for (const file of ['portico.yaml', 'deploy/portico.docker.yaml', 'test/fixtures/short-form.yaml']) {
    assert.ok(v.validate(parse(readFileSync(path.join(ROOT, file), 'utf8'))), `${file}: ${v.errors()}`)
  }
  assert.equal(v.validate(parse(readFileSync(path.join(ROOT, 'test/fixtures/invalid.yaml'), 'utf8'))), false)
  assert.match(v.errors(), /stripPrefx/, 'an unknown key is an error, as in the loader')
})

test('every whole config shown in the README and docs/ is valid against portico.schema.json', () => {
  const v = schemaValidator()
  const files = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  let checked = 0
  for (const file of files) {
    const text = readFileSync(path.join(ROOT, file), 'utf8')
    for (const m of text.matchAll(/```ya?ml\n([\s\S]*?)```/g)) {
      let value: unknown
      try {
        value = parse(m[1])
      } catch {
        continue // a fragment with placeholders, not a config
      }
      // Whole configs only: a block whose every key is a top-level key of the schema.
      if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.keys(value).every((k) => v.topLevel.has(k))) continue
      checked++
      const line = text.slice(0, m.index).split('\n').length
      assert.ok(v.validate(value), `${file}:${line}: ${v.errors()}`)
    }
  }
  assert.ok(checked >= 20, `found ${checked} whole configs in the docs`)
})
