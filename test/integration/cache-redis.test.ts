/**
 * The proxy cache on a shared Redis store: two Portico instances in front of one origin share what is stored and
 * see each other's purges; large bodies stream through Redis in chunks; a Redis outage never fails a request
 * (the cache is bypassed, counted and logged) and the cache comes back with Redis.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { send, startOrigin, startProxy, type Reply, type RunningProxy } from '../helpers/servers.js'
import { eventually, until } from '../helpers/poll.js'
import { redisOrSkip, startRedis, uniquePrefix, warnNoRedis, type RedisServer } from '../helpers/redis.js'

const redis = await startRedis()
if (redis === null) warnNoRedis()
test.after(() => redis?.stop())

function redisCache (server: RedisServer, prefix: string): Record<string, unknown> {
  return { store: 'redis', redis: { url: server.url, prefix, chunkSize: '64kb' }, maxObjectSize: '4mb' }
}

/**
 * Asks until the Cache-Status matches (the store connects asynchronously at start); bounded. Returns the last
 * answer, matching or not (when the last try failed to get one, asks once more and lets that fail the test).
 */
async function sendUntil (url: string, status: RegExp, ms = 5000): Promise<Reply> {
  let last: Reply | undefined
  await until(async () => {
    last = undefined
    last = await send(url)
    return status.test(String(last.headers['cache-status']))
  }, { ms, every: 50 })
  return last ?? await send(url)
}

/** Waits (bounded) until `url` is answerable from the cache alone: only-if-cached never stores anything itself. */
async function untilCached (url: string, ms = 5000): Promise<void> {
  await eventually(`${url} is a cache hit`, async () => (await send(url, { headers: { 'cache-control': 'only-if-cached' } })).status === 200, { ms, every: 20 })
}

test('two instances sharing Redis: stored via one is a hit on the other; a purge on one is seen by both', async (t) => {
  if (!redisOrSkip(t, redis)) return
  const body = randomBytes(1024 * 1024)
  let bigHits = 0
  const origin = await startOrigin((req, res) => {
    if (req.url === '/big') {
      bigHits++
      res.writeHead(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'big media', 'content-length': String(body.length) })
      res.end(body)
      return
    }
    res.writeHead(200, { 'cache-control': 'max-age=60', 'cache-tag': 'pages', 'content-type': 'text/plain' })
    res.end(`page ${req.url}`)
  })
  const prefix = uniquePrefix('cache-redis')
  const token = 'admin-secret'
  process.env.PORTICO_TEST_ADMIN_TOKEN = token
  const config = { upstreams: { '*': [origin.url] }, cache: redisCache(redis, prefix), log: { access: false } }
  const a: RunningProxy = await startProxy({ ...config, admin: { port: 0, host: '127.0.0.1', tokenEnv: 'PORTICO_TEST_ADMIN_TOKEN' } } as never)
  const b: RunningProxy = await startProxy(config as never)
  t.after(async () => {
    await a.close()
    await b.close()
    await origin.close()
  })

  const stored = await sendUntil(`${a.url}/big`, /stored/)
  assert.ok(stored.body.equals(body))
  // A's write to Redis lands asynchronously, after its client already has the response.
  await untilCached(`${b.url}/big`)
  const fromB = await send(`${b.url}/big`)
  assert.match(String(fromB.headers['cache-status']), /^Portico; hit/)
  assert.ok(fromB.body.equals(body), '1 MiB read back through Redis chunks, byte-exact')
  const before = bigHits

  await sendUntil(`${a.url}/docs/one`, /stored/)
  await sendUntil(`${a.url}/docs/two`, /stored/)
  await untilCached(`${b.url}/docs/one`)
  await untilCached(`${b.url}/docs/two`)
  assert.match(String((await send(`${b.url}/docs/one`)).headers['cache-status']), /hit/)

  // Purge by surrogate key through B's library API: A sees it too.
  assert.equal(await b.proxy.purge({ tag: 'media' }), 1)
  assert.match(String((await send(`${a.url}/big`)).headers['cache-status']), /fwd=uri-miss/)
  assert.equal(bigHits, before + 1)

  // Purge by URL and by host + prefix through A's admin API (bearer token required).
  const admin = a.proxy.adminAddress!.url
  const denied = await send(`${admin}/cache/purge`, { method: 'POST', body: JSON.stringify({ tag: 'pages' }) })
  assert.equal(denied.status, 401)
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const byUrl = await send(`${admin}/cache/purge`, { method: 'POST', headers: auth, body: JSON.stringify({ url: `http://127.0.0.1/docs/one` }) })
  assert.equal(byUrl.status, 200)
  assert.deepEqual(JSON.parse(byUrl.body.toString()), { purged: 1 })
  assert.match(String((await send(`${b.url}/docs/one`)).headers['cache-status']), /fwd=uri-miss/)
  assert.match(String((await send(`${b.url}/docs/two`)).headers['cache-status']), /hit/)
  await untilCached(`${a.url}/docs/one`)
  const byPrefix = await send(`${admin}/cache/purge`, { method: 'POST', headers: auth, body: JSON.stringify({ host: '127.0.0.1', prefix: '/docs/' }) })
  assert.equal(JSON.parse(byPrefix.body.toString()).purged, 2)
  assert.match(String((await send(`${b.url}/docs/two`)).headers['cache-status']), /fwd=uri-miss/)

  const stats = await send(`${admin}/cache/stats`, { headers: auth })
  const s = JSON.parse(stats.body.toString())
  assert.equal(s.store, 'redis')
  assert.ok(s.stored >= 3 && s.misses >= 3)
})

test('a Redis outage never fails requests: the cache is bypassed (counted, logged) and comes back with Redis', async (t) => {
  const own = await startRedis({ own: true })
  if (!redisOrSkip(t, own)) return
  let hits = 0
  const origin = await startOrigin((_req, res) => {
    hits++
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' })
    res.end('payload')
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, cache: redisCache(own, uniquePrefix('outage')), log: { access: false } } as never)
  t.after(async () => {
    await proxy.close()
    await origin.close()
    await own.stop()
  })
  await sendUntil(`${proxy.url}/o`, /stored/)
  await untilCached(`${proxy.url}/o`)

  await own.stop()
  const during = await sendUntil(`${proxy.url}/o`, /bypass/)
  assert.equal(during.status, 200)
  assert.equal(during.body.toString(), 'payload')
  assert.match(String(during.headers['cache-status']), /fwd=bypass; detail=store-unavailable/)
  for (let i = 0; i < 5; i++) assert.equal((await send(`${proxy.url}/o`)).status, 200)
  const stats = proxy.proxy.cacheStats() as { bypassed: number }
  assert.ok(stats.bypassed >= 5)
  assert.ok(proxy.logs.some((l) => /cache store unavailable/.test(String(l.msg))), 'the outage is logged')

  await own.restart()
  // Commits are asynchronous: the hit shows once the first write after the restart has landed.
  const back = await sendUntil(`${proxy.url}/o`, /hit/, 10_000)
  assert.match(String(back.headers['cache-status']), /hit/, 'the cache works again once Redis is back')
  assert.ok(hits >= 7)
})
