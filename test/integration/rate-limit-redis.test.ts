/**
 * RedisRateStore against a real redis-server (REDIS_URL, or one spawned for this file by test/helpers/redis.ts):
 * two stores on one Redis behave as one limiter (as two Portico processes would), decisions follow the same GCRA
 * as the memory store, buckets expire when full again, and an outage or a hung Redis admits every request (fail
 * open) with one warning per outage. Without Redis (and not on CI) every test is skipped with a banner; on CI a
 * missing Redis fails the file.
 */
import { after, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { MemoryRateStore, type RateDecision, type RateLimitSpec } from '../../src/rules/rate-limit.js'
import { RedisRateStore, type RedisRateStoreOptions } from '../../src/rules/rate-limit-redis.js'
import { redisOrSkip, startRedis, uniquePrefix, warnNoRedis, type RedisServer, dropPrefixAndStop } from '../helpers/redis.js'
import { eventually, within } from '../helpers/poll.js'

const redis = await startRedis()
if (redis === null) warnNoRedis()
const prefix = uniquePrefix('rate-limit')

/** 10 per minute, 20 extra at once: an idle key admits 21, and no refill happens during a test. */
const spec: RateLimitSpec = { name: 'api', rate: 10, period: 60_000, burst: 20 }
const T = 6_000

interface Log { level: 'warn' | 'info', msg: string }

async function makeStore (t: TestContext, over: Partial<RedisRateStoreOptions> = {}, server: RedisServer = redis!): Promise<{ store: RedisRateStore, logs: Log[] }> {
  const logs: Log[] = []
  const store = new RedisRateStore({
    url: server.url,
    prefix,
    commandTimeout: 1000,
    logger: {
      warn: (_o, msg) => { logs.push({ level: 'warn', msg }) },
      info: (_o, msg) => { logs.push({ level: 'info', msg }) }
    },
    ...over
  })
  t.after(() => store.close())
  await store.whenReady()
  return { store, logs }
}

/** A raw client for looking at what the store wrote. */
function raw (server: RedisServer = redis!): Redis {
  return new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
}

after(async () => {
  if (redis !== null) await dropPrefixAndStop(redis, prefix)
})

test('two stores on one Redis (two Portico processes) admit exactly 1 + burst of 200 concurrent requests in total', async (t) => {
  if (!redisOrSkip(t, redis)) return
  const a = await makeStore(t)
  const b = await makeStore(t)
  const decisions = await Promise.all(Array.from({ length: 200 }, (_v, i) => (i % 2 === 0 ? a : b).store.take('shared', spec)))
  const allowed = decisions.filter((d) => d.allowed)
  assert.equal(allowed.length, 21)
  // Each admitted request saw its own state: remaining counts down 20 … 0 with no value twice.
  assert.deepEqual(allowed.map((d) => d.remaining).sort((x, y) => x - y), Array.from({ length: 21 }, (_v, i) => i))
  for (const d of decisions) {
    assert.equal(d.limit, 30)
    if (!d.allowed) {
      assert.equal(d.remaining, 0)
      assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= T, `retryAfterMs ${d.retryAfterMs}`)
    }
  }
  assert.deepEqual([...a.logs, ...b.logs], [], 'no outage logged')
})

test('the same GCRA as the memory store: a first take, a last admitted one, a refusal', async (t) => {
  if (!redisOrSkip(t, redis)) return
  const { store } = await makeStore(t)
  const memory = new MemoryRateStore({ now: () => 0 })
  // Redis time moves between calls (µs here), so resetMs may be a ms below the memory store's, never above.
  const matches = (d: RateDecision, m: RateDecision, what: string): void => {
    assert.deepEqual({ ...d, resetMs: 0, retryAfterMs: 0 }, { ...m, resetMs: 0, retryAfterMs: 0 }, what)
    assert.ok(d.resetMs <= m.resetMs && d.resetMs > m.resetMs - T, `${what}: resetMs ${d.resetMs} vs ${m.resetMs}`)
    assert.ok(d.retryAfterMs <= m.retryAfterMs && (m.retryAfterMs === 0 ? d.retryAfterMs === 0 : d.retryAfterMs > 0), `${what}: retryAfterMs ${d.retryAfterMs} vs ${m.retryAfterMs}`)
  }
  matches(await store.take('same', spec), memory.take('same', spec), 'first')
  for (let i = 0; i < 19; i++) matches(await store.take('same', spec), memory.take('same', spec), `take ${i + 2}`)
  matches(await store.take('same', spec), memory.take('same', spec), 'last admitted')
  const refused = await store.take('same', spec)
  matches(refused, memory.take('same', spec), 'refused')
  assert.equal(refused.allowed, false)
  // Other keys are independent.
  assert.equal((await store.take('other', spec)).remaining, 20)
})

test('a bucket key lives under the prefix and expires when the bucket is full again', async (t) => {
  if (!redisOrSkip(t, redis)) return
  const { store } = await makeStore(t)
  const r = raw()
  t.after(() => r.disconnect())
  const first = await store.take('expiring', spec)
  let pttl = await r.pttl(`${prefix}expiring`)
  assert.ok(pttl > 0 && pttl <= first.resetMs && first.resetMs <= T, `PTTL ${pttl}, resetMs ${first.resetMs}`)
  for (let i = 0; i < 4; i++) await store.take('expiring', spec)
  const sixth = await store.take('expiring', spec)
  pttl = await r.pttl(`${prefix}expiring`)
  assert.ok(pttl > 4 * T && pttl <= sixth.resetMs && sixth.resetMs <= 6 * T, `PTTL ${pttl} after 6 takes, resetMs ${sixth.resetMs}`)
  // Drained (15 more admitted, then refusals, which write nothing): the bucket is full again 21 intervals on.
  let last: RateDecision | undefined
  for (let i = 0; i < 30; i++) {
    const d = await store.take('expiring', spec)
    if (d.allowed) last = d
  }
  const drained = await r.pttl(`${prefix}expiring`)
  assert.ok(last !== undefined && drained > 0 && drained <= last.resetMs && last.resetMs <= 21 * T, `PTTL ${drained} drained, resetMs ${last?.resetMs}`)
  assert.equal(await r.exists('expiring'), 0, 'nothing outside the prefix')
  // A short period: the key is gone once the bucket is full again.
  const quick: RateLimitSpec = { name: 'quick', rate: 1, period: 50, burst: 0 }
  await store.take('quick', quick)
  await eventually('an idle bucket key vanishes', async () => (await r.exists(`${prefix}quick`)) === 0, { ms: 3000 })
})

test('Redis down: every take resolves allowed (fail open, remaining = limit); one warning per outage, one info when back', async (t) => {
  const own = await startRedis({ own: true })
  if (!redisOrSkip(t, own)) return
  t.after(() => own.stop())
  const { store, logs } = await makeStore(t, { commandTimeout: 500 }, own)
  assert.equal((await store.take('k', spec)).remaining, 20)

  await own.stop()
  for (let i = 0; i < 5; i++) {
    const d = await within(store.take('k', spec), 3000, `take ${i + 1} while Redis is down`)
    assert.deepEqual(d, { allowed: true, limit: 30, remaining: 30, resetMs: 0, retryAfterMs: 0 })
  }
  assert.deepEqual(logs.map((l) => l.level), ['warn'], 'one warning for the outage')

  await own.restart()
  await store.whenReady(10_000)
  // A new server (no persistence) has forgotten the key: a full bucket.
  assert.equal((await store.take('k', spec)).remaining, 20)
  assert.deepEqual(logs.map((l) => l.level), ['warn', 'info'])
})

test('Redis hung (answers nothing): takes fail open after commandTimeout; one warning, and one info when it answers again', async (t) => {
  const own = await startRedis({ own: true })
  if (!redisOrSkip(t, own)) return
  t.after(() => own.stop())
  const { store, logs } = await makeStore(t, { commandTimeout: 200 }, own)
  assert.equal((await store.take('k', spec)).allowed, true)

  own.pause()
  try {
    const decisions = await within(Promise.all([store.take('k', spec), store.take('k', spec), store.take('other', spec)]), 5000, 'takes while Redis is hung')
    for (const d of decisions) assert.deepEqual(d, { allowed: true, limit: 30, remaining: 30, resetMs: 0, retryAfterMs: 0 })
    assert.deepEqual(await within(store.take('k', spec), 5000, 'one more take'), { allowed: true, limit: 30, remaining: 30, resetMs: 0, retryAfterMs: 0 })
  } finally {
    own.resume()
  }
  assert.deepEqual(logs.map((l) => l.level), ['warn'], 'one warning for the outage')

  // Redis answers again on the same connection (commands sent while it was hung may run now: they count).
  await eventually('a take decided by Redis again', async () => (await store.take('k', spec)).remaining < 30)
  assert.deepEqual(logs.map((l) => l.level), ['warn', 'info'])
})
