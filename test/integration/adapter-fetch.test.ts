import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { Hono } from 'hono'
import { createProxy } from '../../src/index.js'
import { toFetchHandler } from '../../src/adapters/index.js'
import { send, startOrigin, startProxy, type Origin } from '../helpers/servers.js'
import { MiB, generatedWeb, hashOf } from '../helpers/adapters.js'

/** An origin that hashes uploads, streams 100 MiB on /down (digest in `served`), and describes other requests. */
async function origin (): Promise<Origin & { served: Promise<string>[] }> {
  const served: Promise<string>[] = []
  const o = await startOrigin((req, res) => {
    if (req.url?.startsWith('/up')) {
      hashOf(req).then(({ digest, bytes }) => res.end(`${bytes} ${digest}`), () => res.destroy())
      return
    }
    if (req.url === '/down') {
      const g = generatedWeb(100 * MiB)
      served.push(g.digest)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(100 * MiB) })
      const reader = g.stream.getReader()
      const pump = async (): Promise<void> => {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) { res.end(); return }
          if (!res.write(value)) await new Promise((resolve) => res.once('drain', resolve))
        }
      }
      void pump()
      return
    }
    const body: Buffer[] = []
    req.on('data', (c: Buffer) => body.push(c))
    req.on('end', () => {
      res.writeHead(201, 'Made', [
        'content-type', 'application/json',
        'set-cookie', 'a=1; Path=/',
        'set-cookie', 'b=2; HttpOnly',
        'x-multi', 'one',
        'x-multi', 'two'
      ])
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(body).toString() }))
    })
  })
  return Object.assign(o, { served })
}

interface Seen { method: string, url: string, headers: http.IncomingHttpHeaders, body: string }

test('fetch handler: 100 MiB upload and 100 MiB download stream through intact (SHA-256)', async (t) => {
  const o = await origin()
  const proxy = createProxy({ upstreams: { '*': [o.url] } })
  const handler = toFetchHandler(proxy)
  t.after(async () => { await handler.close(); await Promise.all([proxy.close(), o.close()]) })

  const up = generatedWeb(100 * MiB)
  const upRes = await handler(new Request('http://app.test/up', { method: 'POST', body: up.stream, duplex: 'half' } as RequestInit))
  assert.equal(await upRes.text(), `${100 * MiB} ${await up.digest}`)
  assert.equal(o.requests[0].headers['transfer-encoding'], 'chunked')

  const down = await handler(new Request('http://app.test/down'))
  assert.equal(down.status, 200)
  assert.equal(down.headers.get('content-length'), String(100 * MiB))
  const got = await hashOf(down.body as unknown as AsyncIterable<Uint8Array>)
  assert.equal(got.bytes, 100 * MiB)
  assert.equal(got.digest, await o.served[0])
})

test('fetch handler: method, host from the URL, headers, body, status, reason and every Set-Cookie', async (t) => {
  const o = await origin()
  const proxy = createProxy({ upstreams: { '*': [o.url] } })
  const handler = toFetchHandler(proxy)
  t.after(async () => { await handler.close(); await Promise.all([proxy.close(), o.close()]) })

  const res = await handler(new Request('http://Shop.Example:8443/p%20q/./r?x=1&y', {
    method: 'PUT',
    headers: [['x-test', 'yes'], ['content-type', 'text/plain'], ['host', 'ignored.test'], ['connection', 'x-hop'], ['x-hop', 'dropped'], ['x-portico-internal-fetch', 'https 6.6.6.6']],
    body: 'payload'
  }))
  assert.equal(res.status, 201)
  assert.equal(res.statusText, 'Made')
  assert.deepEqual(res.headers.getSetCookie(), ['a=1; Path=/', 'b=2; HttpOnly'])
  assert.equal(res.headers.get('x-multi'), 'one, two')
  assert.equal(res.headers.get('connection'), null)
  assert.equal(res.headers.get('transfer-encoding'), null)
  const seen = await res.json() as Seen
  assert.equal(seen.method, 'PUT')
  assert.equal(seen.url, '/p%20q/r?x=1&y')
  assert.equal(seen.body, 'payload')
  assert.equal(seen.headers.host, 'shop.example:8443')
  assert.equal(seen.headers['x-forwarded-host'], 'shop.example:8443')
  assert.equal(seen.headers['x-forwarded-proto'], 'http')
  assert.equal(seen.headers['x-test'], 'yes')
  assert.equal(seen.headers['x-hop'], undefined)
  assert.equal(seen.headers['x-portico-internal-fetch'], undefined)
  // No client address is known here: the core writes "unknown" for this hop.
  assert.equal(seen.headers['x-forwarded-for'], 'unknown')
  assert.equal(seen.headers.via, '1.1 portico')

  const head = await handler(new Request('http://shop.example/h', { method: 'HEAD' }))
  assert.equal(head.status, 201)
  assert.equal(head.body, null)
})

test('fetch handler: the client address from the option (or a Node env) feeds X-Forwarded-For; https URLs set the proto', async (t) => {
  const o = await origin()
  const proxy = createProxy({ upstreams: { '*': [o.url] } })
  const byOption = toFetchHandler(proxy, { clientAddress: (request) => request.headers.get('cf-connecting-ip') ?? undefined })
  const byEnv = toFetchHandler(proxy)
  t.after(async () => { await Promise.all([byOption.close(), byEnv.close()]); await Promise.all([proxy.close(), o.close()]) })

  const a = await (await byOption(new Request('https://secure.test/a', { headers: { 'cf-connecting-ip': '203.0.113.9', 'x-forwarded-for': '10.0.0.1' } }))).json() as Seen
  assert.equal(a.headers['x-forwarded-for'], '203.0.113.9', 'the client\'s own X-Forwarded-For is not believed (no trustedProxies)')
  assert.equal(a.headers['x-forwarded-proto'], 'https')
  const b = await (await byEnv(new Request('http://plain.test/b'), { incoming: { socket: { remoteAddress: '198.51.100.7' } } })).json() as Seen
  assert.equal(b.headers['x-forwarded-for'], '198.51.100.7')
  assert.equal(b.headers['x-forwarded-proto'], 'http')
  // The same in-memory connection carries the next request: nothing of the previous one sticks.
  const c = await (await byEnv(new Request('http://plain.test/c'))).json() as Seen
  assert.equal(c.headers['x-forwarded-for'], 'unknown')
})

test('fetch handler: prefix stripped and sent as X-Forwarded-Prefix; requests outside it forwarded as they are', async (t) => {
  const o = await origin()
  const proxy = createProxy({ upstreams: { '*': [o.url] } })
  const handler = toFetchHandler(proxy, { prefix: '/api' })
  t.after(async () => { await handler.close(); await Promise.all([proxy.close(), o.close()]) })
  const seen = async (url: string): Promise<Seen> => await (await handler(new Request(url))).json() as Seen
  const a = await seen('http://x.test/api/users?id=1')
  assert.equal(a.url, '/users?id=1')
  assert.equal(a.headers['x-forwarded-prefix'], '/api')
  const b = await seen('http://x.test/api?q')
  assert.equal(b.url, '/?q')
  assert.equal(b.headers['x-forwarded-prefix'], '/api')
  const c = await seen('http://x.test/apix')
  assert.equal(c.url, '/apix')
  assert.equal(c.headers['x-forwarded-prefix'], undefined)
})

test('fetch handler in Hono: mounted on a sub-path, the other routes still answer; no route is the proxy\'s 404', async (t) => {
  const o = await origin()
  const proxy = createProxy({ routes: [{ host: 'api.test', upstream: [o.url] }] })
  const handler = toFetchHandler(proxy, { prefix: '/api' })
  const app = new Hono()
  app.get('/hello', (c) => c.text('hono hello'))
  app.all('/api/*', (c) => handler(c.req.raw, c.env))
  app.notFound((c) => c.text('hono 404', 404))
  t.after(async () => { await handler.close(); await Promise.all([proxy.close(), o.close()]) })

  const hello = await app.fetch(new Request('http://api.test/hello'))
  assert.equal(await hello.text(), 'hono hello')
  const proxied = await app.fetch(new Request('http://api.test/api/items?x=1', { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } }))
  assert.equal(proxied.status, 201)
  const seen = await proxied.json() as Seen
  assert.equal(seen.url, '/items?x=1')
  assert.equal(seen.body, '{"a":1}')
  assert.equal(seen.headers['x-forwarded-prefix'], '/api')
  const elsewhere = await app.fetch(new Request('http://api.test/other'))
  assert.equal(elsewhere.status, 404)
  assert.equal(await elsewhere.text(), 'hono 404')
  const unrouted = await app.fetch(new Request('http://unknown.test/api/items'))
  assert.equal(unrouted.status, 404)
  assert.match(String(unrouted.headers.get('proxy-status')), /PORTICO_ERR_NO_ROUTE/)
  assert.equal(o.requests.length, 1)
})

test('fetch handler in Hono served on a port (by Portico, in-process): 100 MiB each way and the client address', async (t) => {
  const o = await origin()
  const proxy = createProxy({ upstreams: { '*': [o.url] } })
  const handler = toFetchHandler(proxy, { prefix: '/api' })
  const app = new Hono()
  app.get('/', (c) => c.text('home'))
  app.all('/api/*', (c) => handler(c.req.raw, c.env))
  const front = await startProxy({ upstreams: { '*': { handler: app } } })
  t.after(async () => { await front.close(); await handler.close(); await Promise.all([proxy.close(), o.close()]) })

  assert.equal((await send(`${front.url}/`)).body.toString(), 'home')
  const port = front.port
  const up = generatedWeb(100 * MiB)
  const upReply = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/up', agent: false }, (res) => {
      let b = ''
      res.on('data', (c) => { b += c })
      res.on('end', () => resolve(b))
    })
    req.on('error', reject)
    void (async () => {
      for await (const c of up.stream as unknown as AsyncIterable<Uint8Array>) if (!req.write(c)) await new Promise((resolve) => req.once('drain', resolve))
      req.end()
    })()
  })
  assert.equal(upReply, `${100 * MiB} ${await up.digest}`)
  assert.equal(o.requests[0].url, '/up')
  assert.equal(o.requests[0].headers['x-forwarded-prefix'], '/api')
  // This hop (no Node env from the front) knows no peer address ("unknown"), which no trustedProxies entry can
  // name: the front proxy's X-Forwarded-For is not believed, and this hop states its own.
  assert.equal(o.requests[0].headers['x-forwarded-for'], 'unknown')

  const down = await new Promise<{ digest: string, bytes: number }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/api/down', agent: false }, (res) => { hashOf(res).then(resolve, reject) }).on('error', reject)
  })
  assert.equal(down.bytes, 100 * MiB)
  assert.equal(down.digest, await o.served[0])
})

test('fetch handler: an aborted request signal, or a cancelled response body, aborts the upstream request', async (t) => {
  let closes = 0
  let notify: () => void = () => {}
  const streaming = await startOrigin((_req, res) => {
    res.writeHead(200)
    res.write('start')
    const tick = setInterval(() => res.write('.'), 5)
    res.on('close', () => { clearInterval(tick); closes++; notify() })
  })
  const closed = (n: number): Promise<void> => new Promise((resolve) => {
    notify = () => { if (closes >= n) resolve() }
    notify()
  })
  const proxy = createProxy({ upstreams: { '*': [streaming.url] } })
  const handler = toFetchHandler(proxy)
  t.after(async () => { await handler.close(); await Promise.all([proxy.close(), streaming.close()]) })

  const controller = new AbortController()
  const res = await handler(new Request('http://s.test/stream', { signal: controller.signal }))
  const reader = res.body!.getReader()
  assert.equal(Buffer.from((await reader.read()).value!).toString().startsWith('start'), true)
  controller.abort()
  await closed(1)
  await assert.rejects(async () => { for (;;) if ((await reader.read()).done) break })

  const res2 = await handler(new Request('http://s.test/stream'))
  const reader2 = res2.body!.getReader()
  await reader2.read()
  await reader2.cancel()
  await closed(2)

  // Aborted before the head: the promise rejects with the signal's reason.
  const early = new AbortController()
  early.abort()
  await assert.rejects(handler(new Request('http://s.test/stream', { signal: early.signal })), { name: 'AbortError' })
})
