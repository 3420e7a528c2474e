/**
 * The balancing policies (src/balancer/policy.ts) over an in-test PoolView: distributions over 10,000 picks within
 * stated tolerances, weights, in-flight counts, ordered failover, and the consistent hash's remapping when one of
 * ten members is removed or added (measured, asserted ≤ 15%).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createPolicy, hash32, type PolicyName, type PoolView } from '../../src/balancer/policy.js'

class View implements PoolView {
  ok: boolean[]
  w: number[]
  load: number[]
  constructor (n: number, weights?: number[]) {
    this.ok = Array(n).fill(true)
    this.w = weights ?? Array(n).fill(1)
    this.load = Array(n).fill(0)
  }

  get size (): number { return this.ok.length }
  usable (i: number): boolean { return this.ok[i] }
  weight (i: number): number { return this.w[i] }
  inflight (i: number): number { return this.load[i] }
}

const members = (weights: number[]): { id: string, weight: number }[] => weights.map((weight, i) => ({ id: `http://10.0.0.${i + 1}:8080`, weight }))

function shares (name: PolicyName, view: View, n: number, key: (i: number) => string | null = () => null): number[] {
  const p = createPolicy(name, members(view.w))
  const counts = Array(view.size).fill(0)
  for (let i = 0; i < n; i++) counts[p.pick(view, key(i))]++
  return counts.map((c) => c / n)
}

test('round-robin: equal weights rotate, unusable members are skipped', () => {
  const v = new View(3)
  const p = createPolicy('round-robin', members(v.w))
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(() => p.pick(v, null)), [0, 1, 2, 0, 1, 2])
  v.ok[1] = false
  assert.deepEqual([0, 1, 2, 3].map(() => p.pick(v, null)), [0, 2, 0, 2])
})

test('smooth weighted round-robin: nginx\'s sequence for 5,1,1; weights 1:2:3:4 within 1% over 10,000 picks', () => {
  const v = new View(3, [5, 1, 1])
  const p = createPolicy('weighted-round-robin', members(v.w))
  assert.deepEqual(Array.from({ length: 7 }, () => p.pick(v, null)), [0, 0, 1, 0, 2, 0, 0])
  const s = shares('round-robin', new View(4, [1, 2, 3, 4]), 10_000)
  s.forEach((x, i) => assert.ok(Math.abs(x - (i + 1) / 10) <= 0.01, `member ${i}: ${x}`))
  const six = createPolicy('round-robin', members([1, 2, 3]))
  const v6 = new View(3, [1, 2, 3])
  const counts = [0, 0, 0]
  for (let i = 0; i < 6; i++) counts[six.pick(v6, null)]++
  assert.deepEqual(counts, [1, 2, 3], 'exact over one cycle')
})

test('round-robin follows effective weights: a member a quarter into slow start gets a quarter of its peer\'s share', () => {
  const v = new View(2)
  v.w[0] = 0.25
  const s = shares('round-robin', v, 10_000)
  assert.ok(Math.abs(s[0] / s[1] - 0.25) < 0.02, `${s[0] / s[1]}`)
})

test('least-requests: the fewest in flight per weight; equal loads spread evenly', () => {
  const v = new View(3)
  v.load = [5, 0, 3]
  assert.equal(createPolicy('least-requests', members(v.w)).pick(v, null), 1)
  const even = shares('least-requests', new View(3), 3000)
  even.forEach((x) => assert.ok(Math.abs(x - 1 / 3) <= 0.05, `${x}`))
  const w = new View(2, [1, 4])
  w.load = [2, 2]
  assert.equal(createPolicy('least-requests', members(w.w)).pick(w, null), 1, '(2+1)/4 < (2+1)/1')
})

test('random-two: even over equal members, shuns a loaded member, honours weights under load', () => {
  shares('random-two', new View(3), 10_000).forEach((x) => assert.ok(Math.abs(x - 1 / 3) <= 0.03, `${x}`))
  const loaded = new View(3)
  loaded.load = [100, 0, 0]
  assert.ok(shares('random-two', loaded, 10_000)[0] < 0.15)
  // Weights act through load: a member of weight 3 carries three times the requests in flight. Simulated: each pick
  // adds a request, and every request in flight ends with probability 1/10 at each step.
  const v = new View(2, [1, 3])
  const p = createPolicy('random-two', members(v.w))
  const counts = [0, 0]
  for (let step = 0; step < 20_000; step++) {
    const i = p.pick(v, null)
    counts[i]++
    v.load[i]++
    for (let j = 0; j < 2; j++) for (let r = v.load[j]; r > 0; r--) if (Math.random() < 0.1) v.load[j]--
  }
  const w = counts.map((c) => c / 20_000)
  assert.ok(Math.abs(w[0] - 0.25) <= 0.05 && Math.abs(w[1] - 0.75) <= 0.05, `${w}`)
})

test('first: the first usable member, failing over and back', () => {
  const v = new View(3)
  const p = createPolicy('first', members(v.w))
  assert.equal(p.pick(v, null), 0)
  v.ok[0] = false
  assert.equal(p.pick(v, null), 1)
  v.ok[0] = true
  assert.equal(p.pick(v, null), 0)
})

test('every policy answers -1 when nothing is usable, and for an empty pool', () => {
  for (const name of ['round-robin', 'weighted-round-robin', 'least-requests', 'random-two', 'first', 'hash'] as PolicyName[]) {
    const v = new View(3)
    v.ok = [false, false, false]
    assert.equal(createPolicy(name, members(v.w)).pick(v, 'k'), -1, name)
    assert.equal(createPolicy(name, []).pick(new View(0), 'k'), -1, `${name}, empty`)
  }
})

/** The member each of `keys` maps to on a ring of `ids`. */
function mapping (ids: string[], keys: string[], weights?: number[]): string[] {
  const p = createPolicy('hash', ids.map((id, i) => ({ id, weight: weights?.[i] ?? 1 })))
  const v = new View(ids.length, weights)
  return keys.map((k) => ids[p.pick(v, k)])
}

test('hash: stable, spread within 3% over 10 members, weights honoured', () => {
  const ids = members(Array(10).fill(1)).map((m) => m.id)
  const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`)
  const a = mapping(ids, keys)
  assert.deepEqual(mapping(ids, keys), a, 'the same key, the same member')
  for (const id of ids) {
    const share = a.filter((x) => x === id).length / keys.length
    assert.ok(Math.abs(share - 0.1) <= 0.03, `${id}: ${share}`)
  }
  const w = mapping(ids.slice(0, 3), keys, [2, 1, 1])
  const heavy = w.filter((x) => x === ids[0]).length / keys.length
  assert.ok(Math.abs(heavy - 0.5) <= 0.05, `weight 2 of 4: ${heavy}`)
})

test('hash: removing or adding one of 10 members remaps ≤ 15% of keys, and none between surviving members', (t) => {
  const ids = members(Array(11).fill(1)).map((m) => m.id)
  const ten = ids.slice(0, 10)
  const keys = Array.from({ length: 10_000 }, (_, i) => `session-${i}`)
  const before = mapping(ten, keys)
  const removed = ten[3]
  const afterRemove = mapping(ten.filter((id) => id !== removed), keys)
  const afterAdd = mapping(ids, keys)
  const movedRemove = keys.filter((_, i) => before[i] !== afterRemove[i]).length / keys.length
  const movedAdd = keys.filter((_, i) => before[i] !== afterAdd[i]).length / keys.length
  t.diagnostic(`remapped: ${(movedRemove * 100).toFixed(1)}% on removing one of 10, ${(movedAdd * 100).toFixed(1)}% on adding an 11th`)
  assert.ok(movedRemove <= 0.15)
  assert.ok(movedAdd <= 0.15)
  keys.forEach((_, i) => {
    if (before[i] !== removed) assert.equal(afterRemove[i], before[i], 'a key whose member survived stays')
    if (afterAdd[i] !== ids[10]) assert.equal(afterAdd[i], before[i], 'only keys taken by the new member move')
  })
})

test('hash: an unusable member\'s keys go elsewhere, the others stay; no key rotates', () => {
  const ids = members(Array(5).fill(1)).map((m) => m.id)
  const p = createPolicy('hash', ids.map((id) => ({ id, weight: 1 })))
  const v = new View(5)
  const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`)
  const before = keys.map((k) => p.pick(v, k))
  v.ok[2] = false
  const after = keys.map((k) => p.pick(v, k))
  keys.forEach((_, i) => {
    if (before[i] === 2) assert.notEqual(after[i], 2)
    else assert.equal(after[i], before[i])
  })
  v.ok[2] = true
  assert.deepEqual([0, 1, 2, 3, 4].map(() => p.pick(v, null)), [0, 1, 2, 3, 4])
  assert.notEqual(hash32('a'), hash32('b'))
})
