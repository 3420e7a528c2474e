import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { renderErrorsDoc } from '../../src/errors-doc.js'
import { configSchema } from '../../src/config/schema.js'
import { ROOT } from '../helpers/servers.js'

test('docs/errors.md matches the error registry (regenerate: node scripts/gen-errors-doc.js)', () => {
  assert.equal(readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8'), renderErrorsDoc())
})

test('docs/config.md documents every config key of the schema', () => {
  const doc = readFileSync(path.join(ROOT, 'docs/config.md'), 'utf8')
  const keys = new Set<string>()
  const walk = (schema: unknown, prefix: string): void => {
    let s = schema as { def?: { type?: string, innerType?: unknown, in?: unknown, shape?: Record<string, unknown>, options?: unknown[], element?: unknown, schema?: unknown } }
    // Unwrap optional/pipe/transform/refinement wrappers.
    for (let i = 0; i < 10 && s?.def; i++) {
      const d = s.def
      if (d.type === 'optional' || d.type === 'default' || d.type === 'nullable') s = d.innerType as typeof s
      else if (d.type === 'pipe') s = d.in as typeof s
      else break
    }
    const d = s?.def
    if (!d) return
    if (d.type === 'object' && d.shape) {
      for (const [k, v] of Object.entries(d.shape)) {
        const key = prefix === '' ? k : `${prefix}.${k}`
        keys.add(key)
        walk(v, key)
      }
    } else if (d.type === 'array') {
      walk(d.element, prefix)
    } else if (d.type === 'union' && d.options) {
      for (const o of d.options) walk(o, prefix)
    }
  }
  walk(configSchema, '')
  assert.ok(keys.size > 20)
  const missing = [...keys].filter((k) => !doc.includes(`\`${k}\``))
  assert.deepEqual(missing, [], `undocumented keys: ${missing.join(', ')}`)
})
