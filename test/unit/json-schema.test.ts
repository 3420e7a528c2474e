/**
 * The committed JSON Schema (portico.schema.json) is the one the zod schema generates, and editors are pointed at
 * it from the bundled portico.yaml.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
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
