/**
 * Corrupt shared-cache data (SECURITY.md#shared-cache): a Redis entry with a truncated head, a key of the wrong type, a
 * body with a chunk missing. Each is a miss (the origin answers, byte for byte), logged once, and removed so the next
 * request stores the response again; never a crash, never a wrong or short body.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { send, startOrigin, startProxy, type Reply } from '../helpers/servers.js'
import { eventually, until } from '../helpers/poll.js'
import { redisOrSkip, startRedis, uniquePrefix, warnNoRedis } from '../helpers/redis.js'

const redis = await startRedis()
if (redis === null) warnNoRedis()
test.after(() => redis?.stop())

const BODY = randomBytes(200 * 1024)

async function setup (prefix: string): Promise<{ get: () => Promise<Reply>, origin: { hits: number }, logs: Record<string, unknown>[], close: () => Promise<void> }> {
  const origin = { hits: 0 }
  const server = await startOrigin((_req, res) => {
    origin.hits++
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': String(BODY.length) })
    res.end(BODY)
  })
  const proxy = await startProxy({
    upstreams: { '*': [server.url] },
    cache: { store: 'redis', redis: { url: redis!.url, prefix, chunkSize: '64kb' }, maxObjectSize: '4mb' }
  } as never)
  return {
    get: () => send(`${proxy.url}/big`),
    origin,
    logs: proxy.logs,
    close: async () => { await proxy.close(); await server.close() }
  }
}

/** Fills the cache (bounded wait: the store connects asynchronously) and returns the Redis keys of the entry. */
async function stored (get: () => Promise<Reply>, client: Redis, prefix: string): Promise<{ meta: string, body: string }> {
  await until(async () => /hit/.test(String((await get()).headers['cache-status'])), { ms: 5000, every: 50 })
  const [meta] = await client.keys(`${prefix}m:*`)
  const [body] = await client.keys(`${prefix}b:*`)
  assert.ok(meta !== undefined && body !== undefined, 'the entry is in Redis')
  return { meta, body }
}

const corruptions: [string, (c: Redis, keys: { meta: string, body: string }) => Promise<unknown>][] = [
  ['a truncated head', async (c, k) => {
    const fields = await c.hgetall(k.meta)
    const [variant, json] = Object.entries(fields)[0]
    await c.hset(k.meta, variant, json.slice(0, Math.floor(json.length / 2)))
  }],
  ['a key of the wrong type', async (c, k) => { await c.del(k.meta); await c.set(k.meta, 'not a hash') }],
  ['a body chunk missing', async (c, k) => {
    assert.equal(await c.llen(k.body), 4, '200 KiB in 64 KiB chunks')
    await c.lset(k.body, 1, 'DELETED')
    await c.lrem(k.body, 1, 'DELETED')
  }]
]

for (const [what, corrupt] of corruptions) {
  test(`corrupt Redis entry, ${what}: a miss answered by the origin byte for byte, logged once, then stored again`, async (t) => {
    if (!redisOrSkip(t, redis)) return
    const prefix = uniquePrefix('corrupt')
    const p = await setup(prefix)
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
    t.after(async () => { await p.close(); client.disconnect() })
    const keys = await stored(p.get, client, prefix)
    const hitsBefore = p.origin.hits
    await corrupt(client, keys)
    for (let i = 0; i < 3; i++) {
      const r = await p.get()
      assert.equal(r.status, 200)
      assert.ok(r.body.equals(BODY), 'the whole body, never a short or wrong one')
    }
    assert.ok(p.origin.hits > hitsBefore, 'the corrupt entry was not served: the origin answered')
    const warnings = p.logs.filter((l) => String(l.msg).includes('corrupt entry'))
    assert.equal(warnings.length, 1, 'logged once')
    await eventually('stored again and served from the cache', async () => /hit/.test(String((await p.get()).headers['cache-status'])))
    const again = await p.get()
    assert.ok(again.body.equals(BODY))
  })
}
