/**
 * RedisStore against a real redis-server (REDIS_URL, or one spawned for this file by test/helpers/redis.ts): the
 * shared store conformance suite, with a second instance as peer, then what is Redis-specific — chunked bodies,
 * Redis TTLs, pub/sub purges, and behaviour while Redis is down or hung. Without Redis (and not on CI) every test
 * is skipped with a banner; on CI a missing Redis fails the file.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { RedisStore, type RedisStoreOptions } from '../../src/cache/redis-store.js'
import type { CacheStore, PurgeFilter } from '../../src/cache/store.js'
import { meta, put, readBody, storeConformance } from '../conformance/cache-store.js'
import { NO_REDIS, redisOrSkip, startRedis, uniquePrefix, warnNoRedis, type RedisServer, dropPrefixAndStop } from '../helpers/redis.js'
import { eventually, sleep, within } from '../helpers/poll.js'

const redis = await startRedis()
if (redis === null) warnNoRedis()
const prefix = uniquePrefix('redis-store')
const maxObjectSize = 256 * 1024

async function makeStore (over: Partial<RedisStoreOptions> = {}, server: RedisServer = redis!): Promise<RedisStore> {
  const store = new RedisStore({ url: server.url, prefix, maxObjectSize, ...over })
  await store.whenReady()
  return store
}

/** A raw client for looking at what the store wrote. */
function raw (server: RedisServer = redis!): Redis {
  return new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
}

/** `fn` must settle as a failure within `ms`: a rejection, or a synchronous throw when `syncThrowOk`. */
async function failsWithin (what: string, fn: () => unknown, options: { ms?: number, syncThrowOk?: boolean } = {}): Promise<void> {
  const ms = options.ms ?? 2000
  let p: Promise<unknown>
  try {
    p = Promise.resolve(fn())
  } catch (err) {
    assert.ok(options.syncThrowOk === true, `${what} threw synchronously instead of rejecting: ${(err as Error).message}`)
    return
  }
  const should = `${what} should fail within ${ms} ms while Redis is down`
  const outcome = await within(p.then(() => 'resolved', () => 'rejected'), ms, should)
  assert.equal(outcome, 'rejected', should)
}

/** Drains a body iterator (so an async generator actually runs). */
async function drain (body: AsyncIterable<Buffer>): Promise<void> {
  for await (const _c of body) { /* read */ }
}

after(async () => {
  if (redis !== null) await dropPrefixAndStop(redis, prefix)
})

describe('RedisStore conformance', { skip: redis === null ? NO_REDIS : false }, () => {
  storeConformance('redis', {
    maxObjectSize,
    // Small chunks: bodies span several list elements and several LRANGE batches.
    make: () => makeStore({ chunkSize: 4096 }),
    makePeer: () => makeStore({ chunkSize: 4096 })
  })
})

const key = (p: string): string => `GET http://redis-only.test${p}`

test('redis store: a 1 MiB body is stored as 64 KiB list elements, pushed while it is written', async (t) => {
  if (!redisOrSkip(t, redis)) return
  const store = await makeStore({ chunkSize: 64 * 1024, maxObjectSize: 2 * 1024 * 1024 })
  const r = raw()
  try {
    const body = randomBytes(1024 * 1024)
    const m = meta(key('/big'))
    const w = store.open(m.key, body.length)
    assert.ok(w)
    // Uneven pieces: the writer re-cuts them into whole chunks.
    const piece = 10_000
    let at = 0
    for (; at < 200_000; at += piece) w.write(body.subarray(at, at + piece))
    // Three full chunks are in Redis before the rest is even written.
    await eventually('chunks pushed before commit', async () => {
      const [, pending] = await r.scan('0', 'MATCH', `${prefix}w:*`, 'COUNT', 1000)
      if (pending.length !== 1) return false
      return await r.llen(pending[0]) === 3
    }, { every: 50 })
    for (; at < body.length; at += piece) w.write(body.subarray(at, Math.min(at + piece, body.length)))
    await w.commit({ ...m })

    const bodyKey = `${prefix}b:${m.bodyId}`
    assert.equal(await r.llen(bodyKey), 16)
    for (const c of await r.lrangeBuffer(bodyKey, 0, -1)) assert.equal(c.length, 64 * 1024)
    const [, left] = await r.scan('0', 'MATCH', `${prefix}w:*`, 'COUNT', 1000)
    assert.deepEqual(left, [], 'the writer list was renamed at commit')

    const [got] = await store.get(m.key)
    assert.equal(got.chunks, null)
    assert.equal(got.meta.size, body.length)
    assert.ok((await readBody(store, got)).equals(body))

    // A body that lost chunks fails instead of returning a short response.
    await r.rpop(bodyKey)
    await assert.rejects(drain(store.body(got.meta)), /gone or short/)
  } finally {
    r.disconnect()
    await store.close()
  }
})

test('redis store: an aborted or oversized write leaves no list behind', async (t) => {
  if (!redisOrSkip(t, redis)) return
  const store = await makeStore({ chunkSize: 1024, maxObjectSize: 8 * 1024 })
  const r = raw()
  try {
    const pending = async (): Promise<string[]> => (await r.scan('0', 'MATCH', `${prefix}w:*`, 'COUNT', 1000))[1]
    const a = store.open(key('/aborted'), null)!
    a.write(randomBytes(4000))
    a.abort()
    const b = store.open(key('/oversized'), null)!
    b.write(randomBytes(5000))
    b.write(randomBytes(5000))
    await b.commit(meta(key('/oversized')))
    await eventually('writer lists deleted', async () => (await pending()).length === 0, { every: 50 })
    assert.deepEqual(await store.get(key('/aborted')), [])
    assert.deepEqual(await store.get(key('/oversized')), [])
  } finally {
    r.disconnect()
    await store.close()
  }
})

test('redis store: the hash, body, host and tag keys carry a Redis TTL up to the longest variant', async (t) => {
  if (!redisOrSkip(t, redis)) return
  const store = await makeStore()
  const r = raw()
  try {
    const k = key('/ttl')
    const short = meta(k, { variant: 'a', expires: Date.now() + 20_000, tags: ['ttl-tag'] })
    const long = meta(k, { variant: 'b', expires: Date.now() + 60_000 })
    await put(store, short, [Buffer.from('short')])
    await put(store, long, [Buffer.from('long')])
    const hashTtl = await r.pttl(`${prefix}m:${k}`)
    assert.ok(hashTtl > 50_000 && hashTtl <= 60_000, `hash PTTL ${hashTtl}`)
    const shortTtl = await r.pttl(`${prefix}b:${short.bodyId}`)
    assert.ok(shortTtl > 10_000 && shortTtl <= 20_000, `body PTTL ${shortTtl}`)
    assert.ok(await r.pttl(`${prefix}b:${long.bodyId}`) > 50_000)
    assert.ok(await r.pttl(`${prefix}h:redis-only.test`) > 50_000)
    assert.ok(await r.pttl(`${prefix}t:ttl-tag`) > 10_000)

    // A 304 update moves the expiry of head and body.
    const [got] = (await store.get(k)).filter((x) => x.meta.variant === 'a')
    await store.update({ ...got.meta, expires: Date.now() + 120_000 })
    assert.ok(await r.pttl(`${prefix}m:${k}`) > 110_000)
    assert.ok(await r.pttl(`${prefix}b:${short.bodyId}`) > 110_000)
    assert.equal((await readBody(store, (await store.get(k)).find((x) => x.meta.variant === 'a')!)).toString(), 'short')

    // A replaced body is kept briefly for readers still streaming it, then expires.
    await put(store, meta(k, { variant: 'b' }), [Buffer.from('newer')])
    const graceTtl = await r.pttl(`${prefix}b:${long.bodyId}`)
    assert.ok(graceTtl > 0 && graceTtl <= 30_000, `replaced body PTTL ${graceTtl}`)
  } finally {
    r.disconnect()
    await store.close()
  }
})

test('redis store: a purge or delete on one instance reaches the other instances\' onPurge listeners', async (t) => {
  if (!redisOrSkip(t, redis)) return
  const a = await makeStore()
  const b = await makeStore()
  try {
    const seenA: PurgeFilter[] = []
    const seenB: PurgeFilter[] = []
    a.onPurge((f) => seenA.push(f))
    b.onPurge((f) => seenB.push(f))
    await put(a, meta(key('/pub'), { tags: ['pubsub'] }), [Buffer.from('x')])
    assert.equal(await a.purge({ tag: 'pubsub' }), 1)
    assert.deepEqual(seenA, [{ tag: 'pubsub' }], 'the purging instance reports its own purge at once')
    await eventually('B hears the purge', () => seenB.length === 1, { every: 50 })
    assert.deepEqual(seenB, [{ tag: 'pubsub' }])

    await b.purge({ host: 'redis-only.test', pathPrefix: '/p' })
    await b.delete(key('/pub'))
    await eventually('A hears the purge and the delete', () => seenA.length === 3, { every: 50 })
    assert.deepEqual(seenA.slice(1), [{ host: 'redis-only.test', pathPrefix: '/p' }, { key: key('/pub') }])
    await sleep(100)
    assert.equal(seenA.length, 3, 'no instance hears its own purge twice')
    assert.equal(seenB.length, 3)
  } finally {
    await a.close()
    await b.close()
  }
})

/** Every method, each of which must fail (not hang) while Redis is unreachable. */
async function everyMethodFails (store: CacheStore, ms: number): Promise<void> {
  const m = meta(key('/outage'))
  await failsWithin('get', () => store.get(m.key), { ms })
  await failsWithin('body', () => drain(store.body({ ...m, size: 1 })), { ms })
  await failsWithin('open + commit', () => {
    const w = store.open(m.key, 1)
    if (w === null) throw new Error('declined')
    w.write(Buffer.from('x'))
    return w.commit(m)
  }, { ms, syncThrowOk: true })
  await failsWithin('update', () => store.update(m), { ms })
  await failsWithin('delete', () => store.delete(m.key), { ms })
  await failsWithin('purge by key', () => store.purge({ key: m.key }), { ms })
  await failsWithin('purge by tag', () => store.purge({ tag: 'x' }), { ms })
  await failsWithin('purge by host', () => store.purge({ host: 'redis-only.test', pathPrefix: '/' }), { ms })
}

test('redis store: with Redis down every call fails fast, and the store works again when Redis is back', async (t) => {
  // A private server: this test kills it.
  const own = await startRedis({ own: true })
  if (!redisOrSkip(t, own)) return
  const logs: { level: string, msg: string }[] = []
  const logger = {
    warn: (_o: object, msg: string) => { logs.push({ level: 'warn', msg }) },
    info: (_o: object, msg: string) => { logs.push({ level: 'info', msg }) }
  }
  const store = await makeStore({ logger }, own)
  try {
    await put(store, meta(key('/before')), [Buffer.from('before')])
    // A write under way when Redis goes.
    const mid = meta(key('/mid-write'))
    const w = store.open(mid.key, null)!

    await own.stop()
    await eventually('store notices', () => !store.available, { every: 50 })
    w.write(randomBytes(100_000))
    await failsWithin('commit of a write cut by the outage', () => w.commit(mid))
    await everyMethodFails(store, 2000)
    assert.deepEqual(logs.map((l) => l.level), ['warn'], 'one warning per outage')

    await own.restart()
    await eventually('put and get work again', async () => {
      await put(store, meta(key('/after')), [Buffer.from('after')])
      const [got] = await store.get(key('/after'))
      return got !== undefined && (await readBody(store, got)).toString() === 'after'
    }, { ms: 10_000, every: 50 })
    assert.equal(store.available, true)
    assert.deepEqual(logs.map((l) => l.level), ['warn', 'info'])

    // Purges flow again too (the subscriber connection came back on its own).
    const peer = await makeStore({}, own)
    try {
      const heard: PurgeFilter[] = []
      store.onPurge((f) => heard.push(f))
      await eventually('purge from a peer heard after the outage', async () => {
        await peer.purge({ tag: 'after-outage' })
        await sleep(50)
        return heard.length > 0
      }, { ms: 10_000, every: 50 })
    } finally {
      await peer.close()
    }
  } finally {
    await store.close()
    await own.stop()
  }
})

test('redis store: a hung Redis (connection open, no answers) fails calls after commandTimeout', async (t) => {
  const own = await startRedis({ own: true })
  if (!redisOrSkip(t, own)) return
  const store = await makeStore({ commandTimeout: 300 }, own)
  try {
    await put(store, meta(key('/hung')), [Buffer.from('x')])
    own.pause()
    assert.equal(store.available, true, 'the connection is still open')
    await everyMethodFails(store, 2000)
    own.resume()
    await eventually('answers again', async () => (await store.get(key('/hung'))).length === 1, { every: 50 })
  } finally {
    own.resume()
    await store.close()
    await own.stop()
  }
})
