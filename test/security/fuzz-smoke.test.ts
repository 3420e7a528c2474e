/**
 * A short, seeded run of the request-parser fuzz (bench/fuzz-engine.ts; `npm run fuzz` runs it for longer): Portico
 * keeps serving, forwards only requests it re-framed, and never desynchronises a keep-alive connection.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runFuzz } from '../../bench/fuzz-engine.js'

test('fuzz smoke: 300 mutated heads (seed 1234, at most 20 s): no violation', async (t) => {
  const r = await runFuzz(20, 1234, 300)
  t.diagnostic(`${r.cases} cases, by first status ${JSON.stringify(r.byStatus)}`)
  assert.deepEqual(r.violations.map((v) => `${v.rule}: ${v.detail} ← ${JSON.stringify(v.input)}`), [])
  assert.ok(r.cases >= 50)
})
