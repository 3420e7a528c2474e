/**
 * The balancing policies (src/balancer/policy.ts) over an in-test PoolView (arrays of usable, weight, in flight):
 * exact sequences where the algorithm is deterministic, distributions over thousands of picks within stated
 * tolerances where it is not, and the consistent hash's remapping when one of ten members is removed or an eleventh
 * added (measured, reported with t.diagnostic, asserted ≤ 15%). No timing assertions.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createPolicy, hash32, type PolicyMember, type PolicyName, type PoolView } from '../../src/balancer/policy.js'

const ALL: PolicyName[] = ['round-robin', 'weighted-round-robin', 'least-requests', 'random-two', 'first', 'hash']

/** A pool as a policy sees it; tests change the arrays between picks. */
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

const members = (weights: number[]): PolicyMember[] => weights.map((weight, i) => ({ id: `http://10.0.0.${i + 1}:8080`, weight }))

/** Each member's share of `n` picks; the policy is built with the view's weights unless `configured` is given. */
function shares (name: PolicyName, view: View, n: number, configured = view.w): number[] {
  const p = createPolicy(name, members(configured))
  const counts = Array(view.size).fill(0)
  for (let i = 0; i < n; i++) counts[p.pick(view, null)]++
  return counts.map((c) => c / n)
}

const pct = (xs: number[]): string => xs.map((x) => `${(x * 100).toFixed(1)}%`).join(' ')
const near = (actual: number, expected: number, tolerance: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} ± ${tolerance}`)

// --- round-robin ----------------------------------------------------------------------------------------------------

test('round-robin: equal weights rotate a, b, c; unusable members are skipped; back in turn when usable again', () => {
  const v = new View(3)
  const p = createPolicy('round-robin', members(v.w))
  const picks = (n: number): number[] => Array.from({ length: n }, () => p.pick(v, null))
  assert.deepEqual(picks(6), [0, 1, 2, 0, 1, 2])
  v.ok[1] = false
  assert.deepEqual(picks(4), [0, 2, 0, 2])
  v.ok[1] = true
  assert.deepEqual(picks(3), [0, 1, 2])
})

test('smooth weighted round-robin: nginx\'s sequences, exact over a cycle, 1:2:3:4 within 1% over 10,000 picks', (t) => {
  for (const name of ['round-robin', 'weighted-round-robin'] as PolicyName[]) {
    const p = createPolicy(name, members([5, 1, 1]))
    const v = new View(3, [5, 1, 1])
    assert.deepEqual(Array.from({ length: 7 }, () => p.pick(v, null)), [0, 0, 1, 0, 2, 0, 0], `${name}: a a b a c a a`)
  }
  const p6 = createPolicy('round-robin', members([1, 2, 3]))
  const v6 = new View(3, [1, 2, 3])
  const six = Array.from({ length: 6 }, () => p6.pick(v6, null))
  assert.deepEqual(six, [2, 1, 0, 2, 1, 2], 'smooth: c b a c b c')
  assert.deepEqual([0, 1, 2].map((i) => six.filter((x) => x === i).length), [1, 2, 3], 'exactly 1, 2, 3 in 6 picks')
  const s = shares('round-robin', new View(4, [1, 2, 3, 4]), 10_000)
  t.diagnostic(`weights 1:2:3:4 over 10,000 picks: ${pct(s)}`)
  s.forEach((x, i) => near(x, (i + 1) / 10, 0.01, `member ${i}`))
})

test('round-robin reads effective weights at every pick: slow start at 0.25 gets a quarter of its peer\'s share', (t) => {
  // Configured weights equal (the rotation's fast path), one member a quarter into slow start, on either side.
  for (const slow of [0, 1]) {
    const v = new View(2)
    v.w[slow] = 0.25
    const s = shares('round-robin', v, 10_000, [1, 1])
    t.diagnostic(`member ${slow} at weight 0.25 of 1: ${pct(s)}, ratio ${(s[slow] / s[1 - slow]).toFixed(3)}`)
    near(s[slow] / s[1 - slow], 0.25, 0.01, `member ${slow}'s share / its peer's`)
  }
  // Ramping up during the run, then back to the plain rotation.
  const v = new View(3)
  const p = createPolicy('round-robin', members([1, 1, 1]))
  v.w[2] = 0.5
  const counts = [0, 0, 0]
  for (let i = 0; i < 5000; i++) counts[p.pick(v, null)]++
  near(counts[2] / counts[0], 0.5, 0.01, 'half weight: half the share')
  v.w[2] = 1
  const after = Array.from({ length: 9 }, () => p.pick(v, null))
  assert.deepEqual([0, 1, 2].map((i) => after.filter((x) => x === i).length), [3, 3, 3], `full weight again: ${after}`)
  // Unequal configured weights follow the effective ones as well.
  const w = new View(2, [2, 1])
  w.w[0] = 0.5
  const s = shares('round-robin', w, 3000, [2, 1])
  near(s[0], 1 / 3, 0.01, 'weight 2 at a quarter (0.5) against 1')
})

// --- least-requests -------------------------------------------------------------------------------------------------

test('least-requests: the fewest in flight per weight; equal loads spread evenly, also around an unusable member', (t) => {
  const v = new View(3)
  v.load = [5, 0, 3]
  assert.equal(createPolicy('least-requests', members(v.w)).pick(v, null), 1)
  const even = shares('least-requests', new View(3), 3000)
  t.diagnostic(`equal in flight, 3,000 picks: ${pct(even)}`)
  even.forEach((x, i) => near(x, 1 / 3, 0.05, `member ${i}`))
  const gap = new View(4)
  gap.ok[1] = false
  const s = shares('least-requests', gap, 3000)
  assert.equal(s[1], 0)
  for (const i of [0, 2, 3]) near(s[i], 1 / 3, 0.05, `member ${i}, member 1 unusable`)
  const w = new View(2, [1, 4])
  w.load = [2, 2]
  assert.equal(createPolicy('least-requests', members(w.w)).pick(w, null), 1, '(2+1)/4 < (2+1)/1')
  w.load = [0, 4]
  assert.equal(createPolicy('least-requests', members(w.w)).pick(w, null), 0, '(0+1)/1 < (4+1)/4')
})

// --- random-two -----------------------------------------------------------------------------------------------------

test('random-two: even over idle equal members, shuns a loaded member, idle weights 1:3 share 25/75', (t) => {
  const even = shares('random-two', new View(3), 10_000)
  t.diagnostic(`idle, equal weights: ${pct(even)}`)
  even.forEach((x, i) => near(x, 1 / 3, 0.03, `member ${i}`))
  const loaded = new View(3)
  loaded.load = [100, 0, 0]
  const l = shares('random-two', loaded, 10_000)
  t.diagnostic(`in flight 100, 0, 0: ${pct(l)}`)
  assert.ok(l[0] < 0.15, `loaded member: ${l[0]}`)
  const w = shares('random-two', new View(2, [1, 3]), 10_000)
  t.diagnostic(`idle, weights 1:3: ${pct(w)}`)
  near(w[0], 0.25, 0.05, 'weight 1')
  near(w[1], 0.75, 0.05, 'weight 3')
  const mixed = new View(4, [1, 1, 2, 4])
  mixed.ok[3] = false
  const m = shares('random-two', mixed, 10_000)
  assert.equal(m[3], 0, 'unusable: never')
  near(m[2], 0.5, 0.05, 'weight 2 of 4 usable')
})

test('random-two: with one usable member, that member; a less loaded member per weight wins the pair', () => {
  const v = new View(3)
  v.ok = [false, true, false]
  const p = createPolicy('random-two', members(v.w))
  for (let i = 0; i < 100; i++) assert.equal(p.pick(v, null), 1)
  const two = new View(2, [1, 4])
  two.load = [1, 2]
  const q = createPolicy('random-two', members(two.w))
  for (let i = 0; i < 100; i++) assert.equal(q.pick(two, null), 1, '2/4 < 1/1')
})

// --- first ----------------------------------------------------------------------------------------------------------

test('first: the first usable member, failing over and back', () => {
  const v = new View(3)
  const p = createPolicy('first', members(v.w))
  assert.deepEqual([p.pick(v, null), p.pick(v, null), p.pick(v, null)], [0, 0, 0])
  v.ok[0] = false
  assert.equal(p.pick(v, null), 1)
  v.ok[1] = false
  assert.equal(p.pick(v, null), 2)
  v.ok[0] = true
  assert.equal(p.pick(v, null), 0)
})

// --- every policy ---------------------------------------------------------------------------------------------------

test('every policy answers -1 when nothing is usable, and for an empty pool', () => {
  for (const name of ALL) {
    const v = new View(3)
    v.ok = [false, false, false]
    const p = createPolicy(name, members(v.w))
    assert.equal(p.pick(v, 'k'), -1, `${name}, with a key`)
    assert.equal(p.pick(v, null), -1, `${name}, without`)
    const empty = createPolicy(name, [])
    assert.equal(empty.pick(new View(0), 'k'), -1, `${name}, empty`)
    assert.equal(empty.pick(new View(0), null), -1, `${name}, empty, without a key`)
    v.ok[2] = true
    assert.equal(p.pick(v, 'k'), 2, `${name}: the only usable member`)
  }
})

// --- hash -----------------------------------------------------------------------------------------------------------

/** The member each of `keys` maps to on a ring of `ids` (all usable). */
function mapping (ids: string[], keys: string[], weights?: number[]): string[] {
  const p = createPolicy('hash', ids.map((id, i) => ({ id, weight: weights?.[i] ?? 1 })))
  const v = new View(ids.length, weights)
  return keys.map((k) => ids[p.pick(v, k)])
}

const idsOf = (n: number): string[] => members(Array(n).fill(1)).map((m) => m.id)
const keysOf = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

test('hash32: deterministic unsigned 32-bit values with avalanche', (t) => {
  assert.equal(hash32('user-1'), hash32('user-1'))
  assert.notEqual(hash32('a'), hash32('b'))
  let bits = 0
  for (let i = 0; i < 2000; i++) {
    const h = hash32(`key-${i}`)
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32)
    let x = (h ^ hash32(`key-${i}!`)) >>> 0
    for (; x !== 0; x >>>= 1) bits += x & 1
  }
  const mean = bits / 2000
  t.diagnostic(`one more character flips ${mean.toFixed(2)} of 32 bits on average`)
  near(mean, 16, 1, 'bits flipped')
})

test('hash: the same key, the same member; 10,000 keys spread within 3% over 10 members; weights honoured', (t) => {
  const ids = idsOf(10)
  const keys = keysOf('user', 10_000)
  const a = mapping(ids, keys)
  assert.deepEqual(mapping(ids, keys), a, 'a fresh ring maps alike')
  const p = createPolicy('hash', members(Array(10).fill(1)))
  const v = new View(10)
  for (const k of keys.slice(0, 100)) assert.equal(p.pick(v, k), p.pick(v, k))
  const spread = ids.map((id) => a.filter((x) => x === id).length / keys.length)
  t.diagnostic(`10 equal members: ${pct(spread)}`)
  spread.forEach((x, i) => near(x, 0.1, 0.03, `member ${i}`))
  const w = mapping(ids.slice(0, 4), keys, [2, 1, 1, 1])
  const heavy = w.filter((x) => x === ids[0]).length / keys.length
  const light = ids.slice(1, 4).map((id) => w.filter((x) => x === id).length / keys.length)
  t.diagnostic(`weights 2, 1, 1, 1: ${pct([heavy, ...light])}`)
  near(heavy, 0.4, 0.05, 'weight 2 of 5')
  const meanLight = light.reduce((x, y) => x + y) / 3
  near(heavy / meanLight, 2, 0.4, 'weight 2 against weight 1')
})

test('hash: removing or adding one of 10 members remaps ≤ 15% of keys, and none between the others', (t) => {
  const ids = idsOf(11)
  const ten = ids.slice(0, 10)
  const keys = keysOf('session', 10_000)
  const before = mapping(ten, keys)
  const removed = ten[3]
  const afterRemove = mapping(ten.filter((id) => id !== removed), keys)
  const afterAdd = mapping(ids, keys)
  const movedRemove = keys.filter((_, i) => before[i] !== afterRemove[i]).length / keys.length
  const movedAdd = keys.filter((_, i) => before[i] !== afterAdd[i]).length / keys.length
  t.diagnostic(`remapped: ${(movedRemove * 100).toFixed(2)}% on removing one of 10, ${(movedAdd * 100).toFixed(2)}% on adding an 11th`)
  assert.ok(movedRemove <= 0.15, `removing: ${movedRemove}`)
  assert.ok(movedAdd <= 0.15, `adding: ${movedAdd}`)
  keys.forEach((k, i) => {
    if (before[i] !== removed) assert.equal(afterRemove[i], before[i], `${k}: its member survived, it stays`)
    if (afterAdd[i] !== ids[10]) assert.equal(afterAdd[i], before[i], `${k}: only keys taken by the new member move`)
  })
})

test('hash: an unusable member\'s keys go to others while the rest stay; they come back with it', () => {
  const p = createPolicy('hash', members(Array(5).fill(1)))
  const v = new View(5)
  const keys = keysOf('k', 2000)
  const before = keys.map((k) => p.pick(v, k))
  v.ok[2] = false
  const after = keys.map((k) => p.pick(v, k))
  let moved = 0
  keys.forEach((k, i) => {
    if (before[i] === 2) {
      assert.notEqual(after[i], 2, k)
      moved++
    } else {
      assert.equal(after[i], before[i], k)
    }
  })
  assert.ok(moved > 0)
  // Moved keys spread over the others rather than all landing on one neighbour.
  const targets = new Set(after.filter((_, i) => before[i] === 2))
  assert.ok(targets.size >= 3, `moved keys went to ${[...targets]}`)
  v.ok[2] = true
  assert.deepEqual(keys.map((k) => p.pick(v, k)), before)
  // Only one member usable: every key goes to it.
  v.ok = [false, false, false, true, false]
  assert.ok(keys.every((k) => p.pick(v, k) === 3))
})

test('hash: a null key rotates over usable members; very large weights keep the ring bounded', () => {
  const p = createPolicy('hash', members(Array(5).fill(1)))
  const v = new View(5)
  assert.deepEqual(Array.from({ length: 10 }, () => p.pick(v, null)), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
  v.ok[1] = false
  assert.deepEqual(Array.from({ length: 4 }, () => p.pick(v, null)), [0, 2, 3, 4])
  // Weights go up to 1,000,000 in the config: 160 points per unit would be 1.6e8 points for this member alone.
  const big = mapping(idsOf(2), keysOf('big', 1000), [1_000_000, 1])
  assert.ok(big.filter((x) => x === idsOf(1)[0]).length >= 990)
})
