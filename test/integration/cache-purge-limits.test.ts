/**
 * Purging (library API and admin API, by URL, host + path prefix, and surrogate key / cache tag), size limits
 * (max object size, total bytes), streaming while storing, and the cache surviving a reload.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { send } from '../helpers/servers.js'
import { cacheRig, reply } from '../helpers/cache.js'

test('purge by exact URL (every variant), by host + path prefix, and by Surrogate-Key / Cache-Tag (library API)', async (t) => {
  const rig = await cacheRig()
  t.after(() => rig.close())
  rig.on('/p/a', reply({ 'cache-control': 'max-age=60', 'surrogate-key': 'red blue' }))
  rig.on('/p/b?x=1', reply({ 'cache-control': 'max-age=60', 'cache-tag': 'green, blue' }))
  rig.on('/pz', reply({ 'cache-control': 'max-age=60' }))
  rig.on('/v', (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'accept-language' })
    res.end(String(req.headers['accept-language']))
  })
  const all = async (): Promise<void> => {
    for (const p of ['/p/a', '/p/b?x=1', '/pz']) await send(rig.url(p))
    for (const l of ['en', 'de']) await send(rig.url('/v'), { headers: { 'accept-language': l } })
  }
  await all()
  const first = await send(rig.url('/p/a'))
  assert.equal(first.headers['surrogate-key'], undefined, 'surrogate keys are for the cache, not the client')
  assert.match(String(first.headers['cache-status']), /hit/)

  const proxy = rig.proxy.proxy
  assert.equal(await proxy.purge({ url: `http://127.0.0.1/v` }), 2, 'both Vary variants')
  assert.equal(await proxy.purge({ tag: 'blue' }), 2)
  assert.equal(await proxy.purge({ tag: 'blue' }), 0)
  await all()
  assert.deepEqual([rig.hits('/p/a'), rig.hits('/p/b?x=1'), rig.hits('/pz'), rig.hits('/v')], [2, 2, 1, 4])
  assert.equal(await proxy.purge({ host: '127.0.0.1', prefix: '/p/' }), 2)
  await all()
  assert.deepEqual([rig.hits('/p/a'), rig.hits('/p/b?x=1'), rig.hits('/pz')], [3, 3, 1], '/pz is not under /p/')
})

test('admin API: stats, purge, and input errors', async (t) => {
  const rig = await cacheRig(true, { admin: { host: '127.0.0.1', port: 0 }, log: { access: true } })
  t.after(() => rig.close())
  rig.on('/a', reply({ 'cache-control': 'max-age=60' }))
  await send(rig.url('/a'))
  await send(rig.url('/a'))
  const lines = rig.proxy.logs.filter((l) => l.path === '/a').map((l) => l.cache)
  assert.deepEqual(lines.map((c) => String(c).replace(/ttl=\d+/, 'ttl=N')), ['Portico; fwd=uri-miss; fwd-status=200; stored; ttl=N', 'Portico; hit; ttl=N'], 'the access log says what the cache did')
  const admin = rig.proxy.proxy.adminAddress!.url
  const stats = JSON.parse((await send(`${admin}/cache/stats`)).body.toString())
  assert.equal(stats.store, 'memory')
  assert.equal(stats.hits, 1)
  assert.equal(stats.stored, 1)
  assert.ok(stats.bytes > 0)
  const bad = await send(`${admin}/cache/purge`, { method: 'POST', body: '{"nope":1}' })
  assert.equal(bad.status, 400)
  assert.equal((await send(`${admin}/cache/purge`, { method: 'POST', body: 'not json' })).status, 400)
  assert.equal((await send(`${admin}/cache/purge`)).status, 405)
  assert.equal((await send(`${admin}/elsewhere`)).status, 404)
  const ok = await send(`${admin}/cache/purge`, { method: 'POST', body: JSON.stringify({ url: 'http://127.0.0.1/a' }) })
  assert.deepEqual(JSON.parse(ok.body.toString()), { purged: 1 })
  await send(rig.url('/a'))
  assert.equal(rig.hits('/a'), 2)
})

test('limits: a body over maxObjectSize (declared or streamed) is forwarded but not stored; total bytes are bounded (LRU)', async (t) => {
  const rig = await cacheRig({ maxObjectSize: '10kb', maxSize: '64kb' })
  t.after(() => rig.close())
  rig.on('/big', reply({ 'cache-control': 'max-age=60' }, 'x'.repeat(20_000)))
  rig.on('/big-chunked', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' })
    for (let i = 0; i < 20; i++) res.write('y'.repeat(1000))
    res.end()
  })
  const big = await send(rig.url('/big'))
  assert.equal(big.body.length, 20_000)
  assert.match(String(big.headers['cache-status']), /detail=too-large/)
  await send(rig.url('/big'))
  const chunked = await send(rig.url('/big-chunked'))
  assert.equal(chunked.body.length, 20_000)
  await send(rig.url('/big-chunked'))
  assert.equal(rig.hits('/big'), 2)
  assert.equal(rig.hits('/big-chunked'), 2)

  for (let i = 0; i < 12; i++) rig.on(`/obj${i}`, reply({ 'cache-control': 'max-age=60' }, String(i % 10).repeat(8000)))
  for (let i = 0; i < 12; i++) await send(rig.url(`/obj${i}`))
  const bytes = (rig.proxy.proxy.cacheStats() as { bytes: number }).bytes
  assert.ok(bytes <= 64 * 1024, `memory store holds ${bytes} bytes`)
  await send(rig.url('/obj0'))
  assert.equal(rig.hits('/obj0'), 2, 'the least recently used entry was evicted')
  const recent = await send(rig.url('/obj11'))
  assert.equal(rig.hits('/obj11'), 1, `a recent entry is still there (${String(recent.headers['cache-status'])}, ${bytes})`)
})

test('a large object streams to the client while it is stored: the first bytes arrive before the origin has finished', async (t) => {
  const rig = await cacheRig({ maxObjectSize: '8mb' })
  t.after(() => rig.close())
  let finish: (() => void) | null = null
  rig.on('/stream', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(2 * 1024 * 1024) })
    res.write(Buffer.alloc(1024 * 1024, 1))
    finish = () => res.end(Buffer.alloc(1024 * 1024, 2))
  })
  const received = await new Promise<number>((resolve, reject) => {
    let n = 0
    http.get(rig.url('/stream'), (res) => {
      res.on('data', (c: Buffer) => {
        n += c.length
        // The origin is still holding back its second half: what arrived was streamed, not stored first.
        if (finish !== null && n >= 1024 * 1024) {
          const f = finish
          finish = null
          f()
        }
      })
      res.on('end', () => resolve(n))
    }).on('error', reject)
  })
  assert.equal(received, 2 * 1024 * 1024)
  const again = await send(rig.url('/stream'))
  assert.match(String(again.headers['cache-status']), /hit/)
  assert.equal(again.body.length, 2 * 1024 * 1024)
  assert.equal(again.body[0], 1)
  assert.equal(again.body[2 * 1024 * 1024 - 1], 2)
})

test('a reload keeps what the cache holds unless the cache settings change', async (t) => {
  const rig = await cacheRig()
  t.after(() => rig.close())
  rig.on('/r', reply({ 'cache-control': 'max-age=60' }))
  await send(rig.url('/r'))
  const upstreams = { '*': [rig.origin.url] }
  await rig.proxy.proxy.reload({ upstreams, cache: true, log: { access: false } })
  await send(rig.url('/r'))
  assert.equal(rig.hits('/r'), 1)
  await rig.proxy.proxy.reload({ upstreams, cache: { maxSize: '1mb' }, log: { access: false } })
  await send(rig.url('/r'))
  assert.equal(rig.hits('/r'), 2, 'new settings, new (empty) store')
  await rig.proxy.proxy.reload({ upstreams, log: { access: false } })
  const off = await send(rig.url('/r'))
  assert.equal(off.headers['cache-status'], undefined)
  assert.equal(rig.hits('/r'), 3)
})

test('HTTP/2 clients get hits, 304s and ranges from the cache like HTTP/1.1 clients', async (t) => {
  const { createProxy } = await import('../../src/index.js')
  const http2 = await import('node:http2')
  const rig = await cacheRig()
  rig.on('/h2', reply({ 'cache-control': 'max-age=60', etag: '"h2"' }, 'over h2'))
  const proxy = createProxy({ listen: [{ host: '127.0.0.1', port: 0, http2: true }], upstreams: { '*': [rig.origin.url] }, cache: true, log: { access: false } })
  const [addr] = await proxy.listen()
  const session = http2.connect(addr.url)
  t.after(async () => {
    session.close()
    await proxy.close()
    await rig.close()
  })
  const get = (headers: Record<string, string> = {}): Promise<{ status: number, headers: Record<string, unknown>, body: string }> => new Promise((resolve, reject) => {
    const s = session.request({ ':path': '/h2', ...headers })
    let status = 0
    let head: Record<string, unknown> = {}
    const parts: Buffer[] = []
    s.on('response', (h) => { status = Number(h[':status']); head = h })
    s.on('data', (c: Buffer) => parts.push(c))
    s.on('end', () => resolve({ status, headers: head, body: Buffer.concat(parts).toString() }))
    s.on('error', reject)
  })
  assert.equal((await get()).body, 'over h2')
  const hit = await get()
  assert.equal(hit.body, 'over h2')
  assert.match(String(hit.headers['cache-status']), /hit/)
  assert.equal((await get({ 'if-none-match': '"h2"' })).status, 304)
  const part = await get({ range: 'bytes=0-3' })
  assert.equal(part.status, 206)
  assert.equal(part.body, 'over')
  assert.equal(rig.hits('/h2'), 1)
})

test('embedded: proxy({ cache: true }) mounted in Express caches behind the mount', async (t) => {
  const { default: express } = await import('express')
  const { proxy } = await import('../../src/index.js')
  const rig = await cacheRig()
  rig.on('/doc?x=1', reply({ 'cache-control': 'max-age=60' }, 'embedded'))
  const mw = proxy({ upstream: [rig.origin.url], cache: true })
  const app = express()
  app.use('/cdn', mw)
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  t.after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await mw.proxy.close()
    await rig.close()
  })
  assert.equal((await send(`${base}/cdn/doc?x=1`)).body.toString(), 'embedded')
  const hit = await send(`${base}/cdn/doc?x=1`)
  assert.equal(hit.body.toString(), 'embedded')
  assert.match(String(hit.headers['cache-status']), /hit/)
  assert.equal(rig.hits('/doc?x=1'), 1)
})
