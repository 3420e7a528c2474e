/**
 * Rate limits through real proxies (docs/rules.md#rate-limits): the memory store exact under concurrency, counted at
 * the node; two Portico instances sharing a Redis allowing the configured total between them; 429 with Retry-After
 * and the RateLimit fields; keys by header; in-flight limits.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { startOrigin, startProxy, send, type Reply } from '../helpers/servers.js'
import { redisOrSkip, startRedis, uniquePrefix } from '../helpers/redis.js'
import { eventually } from '../helpers/poll.js'

/** `n` GETs at once on separate connections. */
async function burst (url: string, n: number, headers: http.OutgoingHttpHeaders = {}): Promise<Reply[]> {
  return await Promise.all(Array.from({ length: n }, async () => await send(url, { headers: { host: 'r.test', ...headers } })))
}

test('memory store: exactly 1 + burst of 100 concurrent requests pass, counted at the node; 429 with Retry-After and RateLimit fields', async (t) => {
  const origin = await startOrigin()
  t.after(() => origin.close())
  const p = await startProxy({ routes: [{ host: 'r.test', upstream: [origin.url], rateLimit: { rate: '10/m', burst: 19 } }] })
  t.after(() => p.close())
  const replies = await burst(p.url, 100)
  const ok = replies.filter((r) => r.status === 200)
  const limited = replies.filter((r) => r.status === 429)
  assert.equal(ok.length, 20)
  assert.equal(limited.length, 80)
  assert.equal(origin.requests.length, 20, 'only the allowed requests reached the node')
  const l = limited[0]
  assert.equal(l.headers['retry-after'], '6')
  assert.equal(l.headers['ratelimit-policy'], '"default";q=29;w=60')
  assert.match(String(l.headers.ratelimit), /^"default";r=0;t=\d+$/)
  assert.match(String(l.headers['proxy-status']), /PORTICO_ERR_RATE_LIMITED/)
  assert.equal(ok[0].headers['ratelimit-policy'], '"default";q=29;w=60', 'allowed responses carry the fields too')
  const remaining = ok.map((r) => Number(/r=(\d+)/.exec(String(r.headers.ratelimit))?.[1])).sort((a, b) => a - b)
  assert.deepEqual(remaining, Array.from({ length: 20 }, (_, i) => i), 'each remaining count given once')
})

test('key header:NAME counts per value; without the field, per client address', async (t) => {
  const origin = await startOrigin()
  t.after(() => origin.close())
  const p = await startProxy({ routes: [{ host: 'r.test', upstream: [origin.url], rateLimit: { key: 'header:x-api-key', rate: '1/h' } }] })
  t.after(() => p.close())
  const statuses = async (headers: http.OutgoingHttpHeaders): Promise<number[]> => (await burst(p.url, 3, headers)).map((r) => r.status).sort()
  assert.deepEqual(await statuses({ 'x-api-key': 'a' }), [200, 429, 429])
  assert.deepEqual(await statuses({ 'x-api-key': 'b' }), [200, 429, 429])
  assert.deepEqual(await statuses({}), [200, 429, 429])
})

test('maxInFlight: at most N requests of one key at the node at once; more get 429 until they finish', async (t) => {
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let atNode = 0
  const origin = await startOrigin((_req, res) => {
    atNode++
    void held.then(() => res.end('done'))
  })
  t.after(() => origin.close())
  const p = await startProxy({ routes: [{ host: 'r.test', upstream: [origin.url], rateLimit: { maxInFlight: 2 } }] })
  t.after(() => p.close())
  const first = [send(p.url, { headers: { host: 'r.test' } }), send(p.url, { headers: { host: 'r.test' } })]
  while (atNode < 2) await new Promise((resolve) => setTimeout(resolve, 5))
  const refused = await burst(p.url, 3)
  assert.deepEqual(refused.map((r) => r.status), [429, 429, 429])
  release()
  assert.deepEqual((await Promise.all(first)).map((r) => r.status), [200, 200])
  assert.equal((await send(p.url, { headers: { host: 'r.test' } })).status, 200, 'slots are released when requests finish')
  assert.equal(origin.requests.length, 3)
})

test('redis store: two Portico instances sharing a Redis allow the configured total between them, counted at the node', async (t) => {
  const redis = await startRedis()
  if (!redisOrSkip(t, redis)) return
  t.after(() => redis.stop())
  const origin = await startOrigin()
  t.after(() => origin.close())
  const prefix = uniquePrefix('rules-rl')
  const shared = { store: 'redis' as const, redis: { url: redis.url, prefix } }
  const config = {
    routes: [
      { host: 'r.test', upstream: [origin.url], rateLimit: { rate: '10/m', burst: 14, ...shared } },
      // A route on the same Redis to see that an instance is connected: a real decision says r=0, one let through
      // before the connection (fail open) says r=1000.
      { host: 'warm.test', upstream: [origin.url], rateLimit: { rate: '1000/s', ...shared } }
    ]
  }
  const a = await startProxy(config)
  const b = await startProxy(config)
  t.after(() => Promise.all([a.close(), b.close()]).then(() => {}))
  for (const p of [a, b]) {
    await eventually('the instance decides with Redis', async () => /r=0;/.test(String((await send(p.url, { headers: { host: 'warm.test' } })).headers.ratelimit)))
  }
  const warm = origin.requests.length
  const replies = (await Promise.all([burst(a.url, 50), burst(b.url, 50)])).flat()
  const ok = replies.filter((r) => r.status === 200).length
  assert.equal(ok, 15, 'one bucket for both instances: 1 + burst')
  assert.equal(origin.requests.length - warm, 15)
  assert.equal(replies.filter((r) => r.status === 429).length, 85)
})
