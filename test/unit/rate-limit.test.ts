/**
 * The rate-limit engine in one process: GCRA as documented in src/rules/rate-limit.ts, pinned on the memory store
 * with an injected clock (no sleeping, nothing timed): what an idle key admits, what one emission interval adds,
 * the exact numbers of each decision, the most any window admits, the key bound, the RateLimit fields, and the
 * in-flight limiter.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { InFlightLimiter, MemoryRateStore, rateLimitFields, type RateDecision, type RateLimitSpec } from '../../src/rules/rate-limit.js'

/** 10 per minute, 20 extra at once: T = 6 s, tau = 120 s, limit 30. */
const spec: RateLimitSpec = { name: 'api', rate: 10, period: 60_000, burst: 20 }
const T = 6_000

/** A clock the test moves by hand. */
function clock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

/** Takes until the first refusal (at most `max` tries): how many were admitted. */
function drain (store: MemoryRateStore, key: string, s: RateLimitSpec, max = 1000): number {
  let n = 0
  for (let i = 0; i < max; i++) {
    if (!store.take(key, s).allowed) return n
    n++
  }
  return n
}

describe('MemoryRateStore: GCRA', () => {
  test('an idle key admits exactly 1 + burst at once, then refuses', () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now })
    assert.equal(drain(store, 'a', spec), 21)
    for (let i = 0; i < 5; i++) assert.equal(store.take('a', spec).allowed, false)
    // burst 0: one at a time.
    assert.equal(drain(store, 'b', { ...spec, burst: 0 }), 1)
  })

  test('one emission interval later exactly one more is admitted; a ms less admits none', () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now })
    assert.equal(drain(store, 'a', spec), 21)
    c.advance(T - 1)
    assert.equal(store.take('a', spec).allowed, false)
    c.advance(1)
    assert.equal(drain(store, 'a', spec), 1)
    c.advance(3 * T)
    assert.equal(drain(store, 'a', spec), 3)
  })

  test('an emission interval that is not a whole number of ms still admits exactly one per interval', () => {
    const c = clock()
    const thirds: RateLimitSpec = { name: 'thirds', rate: 3, period: 1000, burst: 2 }
    const store = new MemoryRateStore({ now: c.now })
    assert.equal(drain(store, 'a', thirds), 3)
    for (let i = 0; i < 30; i++) {
      c.advance(1000 / 3)
      assert.equal(drain(store, 'a', thirds), 1, `interval ${i + 1}`)
    }
    // A whole idle period fills the bucket again: 1 + burst, not more.
    c.advance(5000)
    assert.equal(drain(store, 'a', thirds), 3)
  })

  test('decisions carry exact limit, remaining, resetMs and retryAfterMs', () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now })
    assert.deepEqual(store.take('a', spec), { allowed: true, limit: 30, remaining: 20, resetMs: 6000, retryAfterMs: 0 })
    assert.deepEqual(store.take('a', spec), { allowed: true, limit: 30, remaining: 19, resetMs: 12_000, retryAfterMs: 0 })
    for (let i = 0; i < 18; i++) store.take('a', spec)
    assert.deepEqual(store.take('a', spec), { allowed: true, limit: 30, remaining: 0, resetMs: 126_000, retryAfterMs: 0 })
    assert.deepEqual(store.take('a', spec), { allowed: false, limit: 30, remaining: 0, resetMs: 126_000, retryAfterMs: 6000 })
    // A refusal changes nothing; time does.
    c.advance(1000)
    assert.deepEqual(store.take('a', spec), { allowed: false, limit: 30, remaining: 0, resetMs: 125_000, retryAfterMs: 5000 })
    c.advance(5000)
    assert.deepEqual(store.take('a', spec), { allowed: true, limit: 30, remaining: 0, resetMs: 126_000, retryAfterMs: 0 })
    // Idle for 10 emission intervals: 10 requests' worth back, this one and 9 more.
    c.advance(10 * T)
    assert.deepEqual(store.take('a', spec), { allowed: true, limit: 30, remaining: 9, resetMs: 72_000, retryAfterMs: 0 })
    // Idle long enough: a full bucket, the same as a key never seen.
    c.advance(10 * 60_000)
    assert.deepEqual(store.take('a', spec), store.take('never-seen', spec))
  })

  test('retryAfterMs is exact: a retry after it is admitted, one a ms earlier is not', () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now })
    drain(store, 'a', spec)
    c.advance(2500)
    const refused = store.take('a', spec)
    assert.equal(refused.retryAfterMs, 3500)
    c.advance(refused.retryAfterMs - 1)
    assert.equal(store.take('a', spec).allowed, false)
    c.advance(1)
    assert.equal(store.take('a', spec).allowed, true)
  })

  test('no window of one period admits more than limit (rate + burst), and one from idle admits exactly that', () => {
    const s: RateLimitSpec = { name: 'w', rate: 5, period: 1000, burst: 3 }
    const c = clock(0)
    const store = new MemoryRateStore({ now: c.now })
    // A client that sends as much as it may, checking every 10 ms for 5 periods.
    const admitted: number[] = []
    for (let t = 0; t < 5000; t += 10) {
      for (let i = 0; i < 100 && store.take('k', s).allowed; i++) admitted.push(c.now())
      c.advance(10)
    }
    assert.equal(admitted.filter((t) => t < 1000).length, 8, 'the first period from idle admits rate + burst')
    for (let start = 0; start <= 4000; start += 10) {
      const inWindow = admitted.filter((t) => t >= start && t < start + 1000).length
      assert.ok(inWindow <= 8, `window at ${start} ms admitted ${inWindow}`)
    }
    // Sustained: 1 + burst at 0 ms, then one every 200 ms (at 200, 400, … 4800 ms).
    assert.equal(admitted.length, 4 + 24)
  })

  test('keys are independent', () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now })
    assert.equal(drain(store, 'a', spec), 21)
    assert.deepEqual(store.take('b', spec), { allowed: true, limit: 30, remaining: 20, resetMs: 6000, retryAfterMs: 0 })
    assert.equal(drain(store, 'b', spec), 20)
    assert.equal(store.take('a', spec).allowed, false)
  })

  test('1,000 concurrent takes admit exactly 1 + burst', async () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now })
    const decisions = await Promise.all(Array.from({ length: 1000 }, async (_v, i) => {
      // Interleave: every caller yields a different number of times before it takes.
      for (let y = 0; y < i % 7; y++) await null
      return store.take('hot', spec)
    }))
    const allowed = decisions.filter((d) => d.allowed)
    assert.equal(allowed.length, 21)
    assert.deepEqual(allowed.map((d) => d.remaining).sort((x, y) => x - y), Array.from({ length: 21 }, (_v, i) => i))
  })

  test('maxKeys bounds the keys remembered; recently used keys keep their state, the least recent go first', () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now, maxKeys: 100 })
    const one: RateLimitSpec = { ...spec, burst: 0 }
    assert.equal(store.take('kept', one).allowed, true)
    for (let i = 0; i < 1000; i++) {
      store.take(`k${i}`, one)
      // 'kept' stays recently used.
      if (i % 50 === 0) assert.equal(store.take('kept', one).allowed, false)
      assert.ok(store.size <= 100, `size ${store.size} after ${i + 1} keys`)
    }
    assert.equal(store.size, 100)
    assert.equal(store.take('k999', one).allowed, false, 'a recent key remembers')
    // k0 was evicted: it starts with a full bucket again (the price of the bound).
    assert.equal(store.take('k0', one).allowed, true)
  })

  test('an invalid spec is a RangeError', () => {
    const store = new MemoryRateStore()
    for (const bad of [{ rate: 0 }, { rate: 1.5 }, { period: 0 }, { period: Infinity }, { burst: -1 }, { burst: 0.5 }, { rate: NaN }]) {
      assert.throws(() => store.take('k', { ...spec, ...bad }), RangeError, JSON.stringify(bad))
    }
  })

  test('close forgets every key', async () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now })
    drain(store, 'a', spec)
    await store.close()
    assert.equal(store.size, 0)
  })
})

describe('rateLimitFields', () => {
  test('an admitted request: policy and current limit, no Retry-After', () => {
    const d: RateDecision = { allowed: true, limit: 30, remaining: 20, resetMs: 6000, retryAfterMs: 0 }
    assert.deepEqual(rateLimitFields(spec, d), [
      'ratelimit-policy', '"api";q=30;w=60',
      'ratelimit', '"api";r=20;t=6'
    ])
  })

  test('a refused request adds Retry-After in whole seconds, rounded up', () => {
    const d: RateDecision = { allowed: false, limit: 30, remaining: 0, resetMs: 125_001, retryAfterMs: 5001 }
    assert.deepEqual(rateLimitFields(spec, d), [
      'ratelimit-policy', '"api";q=30;w=60',
      'ratelimit', '"api";r=0;t=126',
      'retry-after', '6'
    ])
  })

  test('Retry-After is at least 1; a period under a second is w=1; a partial second rounds up', () => {
    const s: RateLimitSpec = { name: 'fast', rate: 5, period: 500, burst: 0 }
    assert.deepEqual(rateLimitFields(s, { allowed: false, limit: 5, remaining: 0, resetMs: 1, retryAfterMs: 1 }), [
      'ratelimit-policy', '"fast";q=5;w=1',
      'ratelimit', '"fast";r=0;t=1',
      'retry-after', '1'
    ])
    assert.equal(rateLimitFields({ ...s, period: 1500 }, { allowed: true, limit: 5, remaining: 4, resetMs: 300, retryAfterMs: 0 })[1], '"fast";q=5;w=2')
  })

  test('the fields of real decisions, from the memory store', () => {
    const c = clock()
    const store = new MemoryRateStore({ now: c.now })
    assert.deepEqual(rateLimitFields(spec, store.take('a', spec)), ['ratelimit-policy', '"api";q=30;w=60', 'ratelimit', '"api";r=20;t=6'])
    drain(store, 'a', spec)
    c.advance(500)
    assert.deepEqual(rateLimitFields(spec, store.take('a', spec)), [
      'ratelimit-policy', '"api";q=30;w=60', 'ratelimit', '"api";r=0;t=126', 'retry-after', '6'
    ])
  })

  test('the policy name is a valid sf-string: quotes and backslashes escaped, non-ASCII replaced', () => {
    const d: RateDecision = { allowed: true, limit: 1, remaining: 0, resetMs: 1000, retryAfterMs: 0 }
    const fields = rateLimitFields({ name: 'a"b\\c\u00e9\n', rate: 1, period: 1000, burst: 0 }, d)
    assert.equal(fields[1], '"a\\"b\\\\c??";q=1;w=1')
    assert.equal(fields[3], '"a\\"b\\\\c??";r=0;t=1')
  })
})

describe('InFlightLimiter', () => {
  test('at most max per key at once; release frees a slot; keys are independent', () => {
    const l = new InFlightLimiter(2)
    assert.equal(l.acquire('a'), true)
    assert.equal(l.acquire('a'), true)
    assert.equal(l.acquire('a'), false)
    assert.equal(l.acquire('b'), true)
    assert.equal(l.size(), 2)
    l.release('a')
    assert.equal(l.acquire('a'), true)
    assert.equal(l.acquire('a'), false)
  })

  test('a key with nothing in flight is forgotten; a release without an acquire is ignored', () => {
    const l = new InFlightLimiter(1)
    l.release('never')
    assert.equal(l.size(), 0)
    assert.equal(l.acquire('a'), true)
    l.release('a')
    l.release('a')
    assert.equal(l.size(), 0)
    assert.equal(l.acquire('a'), true)
    assert.equal(l.acquire('a'), false, 'the extra release did not add a slot')
  })

  test('max must be a positive integer', () => {
    for (const bad of [0, -1, 1.5, NaN]) assert.throws(() => new InFlightLimiter(bad), RangeError)
  })
})
