/**
 * Regressions found by an adversarial review of the cache: Vary on requests that join a fill late, oversize
 * bodies whose readers leave, orphaned upstream requests, reloads with fills in flight, what the stored policy
 * keeps of the request, and close() with a background refresh pending. Every wait is bounded.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { send } from '../helpers/servers.js'
import { cacheRig } from '../helpers/cache.js'
import { until, within } from '../helpers/poll.js'

test('§4.1: a request that joins a fill after its head, with other Vary values, goes upstream on its own', async (t) => {
  const rig = await cacheRig()
  t.after(() => rig.close())
  let release: (() => void) | null = null
  rig.on('/me', (req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=60', vary: 'Cookie' })
    res.write(`hello ${String(req.headers.cookie)}: `)
    const end = (): void => { res.end(`secret of ${String(req.headers.cookie)}`) }
    if (release === null) release = end
    else end()
  })
  const alice = send(rig.url('/me'), { headers: { cookie: 'session=alice' } })
  assert.ok(await until(() => release !== null))
  const bob = await within(send(rig.url('/me'), { headers: { cookie: 'session=bob' } }), 5000, 'bob')
  release!()
  assert.equal(bob.body.toString(), 'hello session=bob: secret of session=bob')
  assert.match(String(bob.headers['cache-status']), /detail=vary/)
  assert.equal((await alice).body.toString(), 'hello session=alice: secret of session=alice')
  assert.equal(rig.hits('/me'), 2)
})

test('an oversize body of unknown length: when the paused reader leaves, the others still get everything', async (t) => {
  const rig = await cacheRig({ maxObjectSize: '256kb' })
  t.after(() => rig.close())
  const total = 48 * 1024 * 1024
  const block = Buffer.alloc(64 * 1024, 97)
  rig.on('/big', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' })
    let sent = 0
    const pump = (): void => {
      while (sent < total) {
        sent += block.length
        if (!res.write(block)) {
          res.once('drain', pump)
          return
        }
      }
      res.end()
    }
    setTimeout(pump, 100)
  })
  const u = new URL(rig.url('/big'))
  // A never reads, then leaves; B reads everything.
  const a = http.get({ host: u.hostname, port: u.port, path: u.pathname, agent: false }, (res) => res.pause())
  a.on('error', () => {})
  assert.ok(await until(() => rig.hits('/big') === 1))
  let got = 0
  const b = new Promise<number>((resolve, reject) => {
    http.get({ host: u.hostname, port: u.port, path: u.pathname, agent: false }, (res) => {
      res.on('data', (c: Buffer) => { got += c.length })
      res.on('end', () => resolve(got))
      res.on('error', reject)
    }).on('error', reject)
  })
  assert.ok(await until(() => got > 512 * 1024), 'B is reading')
  a.destroy()
  assert.equal(await within(b, 15_000, 'B'), total)
  assert.equal(rig.hits('/big'), 1)
})

test('an oversize body nobody reads any more is not fetched to the end: the upstream request is aborted', async (t) => {
  const rig = await cacheRig({ maxObjectSize: '64kb' })
  t.after(() => rig.close())
  let closed = false
  let sent = 0
  rig.on('/endless', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' })
    res.on('close', () => { closed = true })
    const block = Buffer.alloc(16 * 1024, 98)
    const pump = (): void => {
      while (!closed) {
        sent += block.length
        if (!res.write(block)) {
          res.once('drain', pump)
          return
        }
      }
    }
    pump()
  })
  const u = new URL(rig.url('/endless'))
  let got = 0
  const req = http.get({ host: u.hostname, port: u.port, path: u.pathname, agent: false }, (res) => {
    res.on('data', (c: Buffer) => {
      got += c.length
      if (got > 200 * 1024) req.destroy()
    })
  })
  req.on('error', () => {})
  assert.ok(await until(() => closed, { ms: 10_000 }), `the origin connection was closed (origin sent ${sent} bytes)`)
})

test('a reload while a collapsed fill is pending: waiters that must go upstream alone use the live route', async (t) => {
  const rig = await cacheRig()
  t.after(() => rig.close())
  rig.on('/acct', (req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'private' })
      res.end(`for ${String(req.headers['x-user'])}`)
    }, 300)
  })
  const a = send(rig.url('/acct'), { headers: { 'x-user': 'a' } })
  assert.ok(await until(() => rig.hits('/acct') === 1))
  const b = send(rig.url('/acct'), { headers: { 'x-user': 'b' } })
  const c = send(rig.url('/acct'), { headers: { 'x-user': 'c' } })
  assert.ok(await until(() => (rig.proxy.proxy.cacheStats() as { collapsed: number }).collapsed === 2))
  const reloaded = rig.proxy.proxy.reload({ upstreams: { '*': [rig.origin.url] }, cache: true, log: { access: false } })
  const replies = await within(Promise.all([a, b, c]), 10_000, 'waiters')
  assert.deepEqual(replies.map((r) => [r.status, r.body.toString()]), [[200, 'for a'], [200, 'for b'], [200, 'for c']])
  await reloaded
})

test('the stored policy keeps only the request fields Vary names, never the leader\'s cookies or keys', async (t) => {
  const rig = await cacheRig()
  t.after(() => rig.close())
  rig.on('/v', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=60', vary: 'Accept-Encoding' })
    res.end('v')
  })
  await send(rig.url('/v'), { headers: { cookie: 'sid=topsecret', 'x-api-key': 'key-123', authorization: 'Bearer tok', 'accept-encoding': 'gzip' } })
  const cache = rig.proxy.proxy.cache!
  const stored = await cache.store.get('GET http://127.0.0.1/v')
  assert.equal(stored.length, 1)
  const text = JSON.stringify(stored[0].meta)
  for (const secret of ['topsecret', 'key-123', 'Bearer tok']) assert.ok(!text.includes(secret), `stored entry holds ${secret}`)
  assert.ok(text.includes('gzip'), 'the Vary field is kept to match requests')
})

test('close() does not wait for a background refresh on a slow origin', async (t) => {
  const rig = await cacheRig()
  let slow: http.ServerResponse | null = null
  t.after(async () => {
    slow?.destroy()
    await rig.origin.close()
  })
  rig.on('/swr', (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=600', age: '5' })
      res.end('stale')
      return
    }
    slow = res // never answers
  })
  await send(rig.url('/swr'))
  const hit = await send(rig.url('/swr'))
  assert.match(String(hit.headers['cache-status']), /stale-while-revalidate/)
  assert.ok(await until(() => rig.hits('/swr') === 2))
  await within(rig.proxy.proxy.close({ drainTimeout: 200 }), 5000, 'close()')
})
