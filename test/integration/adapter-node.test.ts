/**
 * Portico as the request listener of Node's own servers: `node:http`, `node:https` and `node:http2` (a secure
 * server with `allowHTTP1`), certificates generated at test time. Every HTTP/1.1 case runs on all three servers:
 * the `proxy()` one-liner (bare, and under a mount path set up the way Express and Connect do it),
 * `createProxy().handler` with host routing falling through to the app's `next`, bodies a hand-written parser
 * already read, 100 MiB each way, a client that leaves mid-download, and WebSocket upgrades. HTTP/2 requests
 * (`http2.connect`) reach the handler as Http2ServerRequest/Http2ServerResponse compat objects and have their own
 * cases at the end.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import http2 from 'node:http2'
import type { AddressInfo, Socket } from 'node:net'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { generate } from 'selfsigned'
import { createProxy, proxy } from '../../src/index.js'
import { BIG, BIG_SHA256, MiB, clients, closeWebSocket, echo, pumpInto, testOrigin, type CallReply, type ParsedRequest } from '../helpers/adapters.js'

/** A throwaway certificate for 127.0.0.1 and localhost, made for this run and never written to disk. */
const TLS = await (async (): Promise<{ key: string, cert: string }> => {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }]
  })
  return { key: pems.private, cert: pems.cert }
})()

// --- the app: what a framework would do, by hand -----------------------------------------------------------------

type Listener = (req: IncomingMessage, res: ServerResponse) => void
type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void

/**
 * `app.use(prefix, mw)` as Express and Connect do it: a request under `prefix` reaches `mw` with the prefix
 * removed from `req.url` and the full URL kept in `req.originalUrl`; anything else (and `mw`'s `next`) goes on.
 */
function mountAt (prefix: string, mw: Middleware, otherwise: Listener): Listener {
  return (req, res) => {
    const url = req.url ?? '/'
    if (!(url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`))) {
      otherwise(req, res)
      return
    }
    const r = req as ParsedRequest
    r.originalUrl ??= url
    const rest = url.slice(prefix.length)
    req.url = rest === '' || rest[0] === '?' ? `/${rest}` : rest
    mw(req, res, () => {
      req.url = url
      otherwise(req, res)
    })
  }
}

/** A hand-written body parser in front of `mw`: reads the whole body, then keeps it parsed, raw, or not at all. */
function parseBody (keep: 'json' | 'raw' | 'nothing', mw: Middleware): Middleware {
  return (req, res, next) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const r = req as ParsedRequest
      if (keep === 'json') r.body = JSON.parse(Buffer.concat(chunks).toString())
      if (keep === 'raw') r.rawBody = Buffer.concat(chunks)
      mw(req, res, next)
    })
  }
}

/** The app's own answer to whatever the proxy left alone. */
function ownRoutes (req: IncomingMessage, res: ServerResponse): void {
  const own = req.url === '/own' || req.url?.startsWith('/own?') === true
  res.writeHead(own ? 200 : 404, { 'content-type': 'text/plain' })
  res.end(own ? 'own route' : 'app: not found')
}

// --- servers and HTTP/1.1 clients -------------------------------------------------------------------------------

type AnyServer = http.Server | https.Server | http2.Http2SecureServer

interface App {
  url: string
  port: number
  server: AnyServer
  close (): Promise<void>
}

/** One kind of server the listener is mounted in, and how an HTTP/1.1 client reaches it. */
interface Transport {
  name: string
  scheme: 'http' | 'https'
  create (listener: Listener): AnyServer
}

const TRANSPORTS: Transport[] = [
  { name: 'node:http', scheme: 'http', create: (listener) => http.createServer(listener) },
  { name: 'node:https', scheme: 'https', create: (listener) => https.createServer({ key: TLS.key, cert: TLS.cert }, listener) },
  {
    name: 'node:http2 (allowHTTP1, HTTP/1.1 client)',
    scheme: 'https',
    // The compat request and response are not IncomingMessage/ServerResponse, hence the cast; HTTP/1.1 requests
    // on this server are the real thing.
    create: (listener) => http2.createSecureServer({ key: TLS.key, cert: TLS.cert, allowHTTP1: true }, listener as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void)
  }
]

async function serve (transport: Transport, listener: Listener): Promise<App> {
  const server = transport.create(listener)
  const sessions = new Set<http2.ServerHttp2Session>()
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s)
    s.on('close', () => sessions.delete(s))
  })
  const sockets = new Set<Socket>()
  server.on('secureConnection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `${transport.scheme}://127.0.0.1:${port}`,
    port,
    server,
    close: () => new Promise<void>((resolve) => {
      for (const s of sessions) s.destroy()
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  }
}

const { call, upload, download, leaveMidDownload, openWebSocket } = clients(TLS.cert)

// --- HTTP/1.1 cases, on every server ---------------------------------------------------------------------------

for (const transport of TRANSPORTS) {
  const { name, scheme } = transport

  test(`${name}: proxy() as the listener forwards the target byte-exact; under a mount path without it, with X-Forwarded-Prefix`, async (t) => {
    const origin = await testOrigin()
    const bare = proxy({ upstream: [origin.url] })
    const whole = await serve(transport, bare)
    const mw = proxy({ upstream: [origin.url] })
    const mounted = await serve(transport, mountAt('/google', mw, ownRoutes))
    t.after(() => Promise.all([whole.close(), mounted.close(), bare.proxy.close(), mw.proxy.close(), origin.close()]))

    const odd = '/a%2Fb/%7Euser;p=1?q=%E2%82%AC+x&&empty=&q=2'
    const direct = await call(whole.url, { path: odd })
    assert.equal(direct.status, 200)
    assert.equal(origin.arrivals[0].url, odd)
    assert.equal(origin.arrivals[0].headers['x-forwarded-prefix'], undefined)
    assert.equal(origin.arrivals[0].headers['x-forwarded-proto'], scheme)
    assert.equal(origin.arrivals[0].headers.host, `127.0.0.1:${whole.port}`)

    const search = await call(mounted.url, { path: '/google/search?q=1' })
    assert.equal(search.body.toString(), 'origin saw GET /search?q=1')
    assert.equal(origin.arrivals[1].url, '/search?q=1')
    assert.equal(origin.arrivals[1].headers['x-forwarded-prefix'], '/google')
    assert.equal(origin.arrivals[1].headers['x-forwarded-proto'], scheme)
    await call(mounted.url, { path: `/google${odd}` })
    assert.equal(origin.arrivals[2].url, odd)
    await call(mounted.url, { path: '/google?hl=de' })
    assert.equal(origin.arrivals[3].url, '/?hl=de')

    const own = await call(`${mounted.url}/own`)
    assert.equal(own.body.toString(), 'own route')
    assert.equal((await call(`${mounted.url}/googleplex`)).body.toString(), 'app: not found')
    assert.equal(origin.arrivals.length, 4)
  })

  test(`${name}: createProxy().handler routes by host; unmatched requests go to next()`, async (t) => {
    const origin = await testOrigin()
    const p = createProxy({ routes: [{ host: 'api.test', upstream: [origin.url] }, { host: 'static.test', path: '/assets', upstream: [origin.url] }] })
    const app = await serve(transport, (req, res) => p.handler(req, res, () => ownRoutes(req, res)))
    t.after(() => Promise.all([app.close(), p.close(), origin.close()]))

    const api = await call(`${app.url}/own?x=1`, { headers: { host: 'api.test' } })
    assert.equal(api.body.toString(), 'origin saw GET /own?x=1')
    assert.equal(origin.arrivals[0].headers.host, 'api.test')
    assert.equal(origin.arrivals[0].headers['x-forwarded-host'], 'api.test')
    const asset = await call(`${app.url}/assets/a.css`, { headers: { host: 'static.test' } })
    assert.equal(asset.body.toString(), 'origin saw GET /assets/a.css')

    for (const host of ['other.test', 'static.test']) {
      const own = await call(`${app.url}/own`, { headers: { host } })
      assert.equal(own.status, 200)
      assert.equal(own.body.toString(), 'own route')
    }
    const missing = await call(`${app.url}/nothing`, { headers: { host: 'other.test' } })
    assert.equal(missing.body.toString(), 'app: not found')
    assert.equal(missing.headers['proxy-status'], undefined)
    assert.equal(origin.arrivals.length, 2)
  })

  test(`${name}: a body read by a parser first: parsed JSON re-serialised, req.rawBody byte-exact, nothing kept: 500`, async (t) => {
    const origin = await testOrigin()
    const mw = proxy({ upstream: [origin.url] })
    const listener = mountAt('/parsed', parseBody('json', mw), mountAt('/raw', parseBody('raw', mw), mountAt('/drained', parseBody('nothing', mw), ownRoutes)))
    const app = await serve(transport, listener)
    t.after(() => Promise.all([app.close(), mw.proxy.close(), origin.close()]))

    const json = '{ "name" : "portico",\n  "tags": [ "a", "b" ], "e": "\\u00e9" }\n'
    const canonical = JSON.stringify(JSON.parse(json))
    const jsonHeaders = { 'content-type': 'application/json' }
    const parsed = await call(`${app.url}/parsed/items`, { method: 'POST', headers: jsonHeaders, chunks: [json.slice(0, 7), json.slice(7)] })
    assert.equal(parsed.status, 200)
    assert.equal(origin.arrivals[0].url, '/items')
    assert.equal(origin.arrivals[0].body.toString(), canonical)
    assert.equal(origin.arrivals[0].headers['content-length'], String(Buffer.byteLength(canonical)))
    assert.equal(origin.arrivals[0].headers['transfer-encoding'], undefined)

    const raw = await call(`${app.url}/raw/hook`, { method: 'POST', headers: { ...jsonHeaders, 'content-length': Buffer.byteLength(json) }, chunks: [json] })
    assert.equal(raw.status, 200)
    assert.equal(origin.arrivals[1].body.toString(), json)
    assert.equal(origin.arrivals[1].headers['content-length'], String(Buffer.byteLength(json)))

    const drained = await call(`${app.url}/drained/x`, { method: 'POST', headers: jsonHeaders, chunks: [json] })
    assert.equal(drained.status, 500)
    assert.match(drained.body.toString(), /PORTICO_ERR_BODY_CONSUMED/)
    assert.match(String(drained.headers['proxy-status']), /details="PORTICO_ERR_BODY_CONSUMED"/)
    assert.equal(origin.requests.length, 2)
  })

  test(`${name}: 100 MiB upload and 100 MiB download arrive intact (SHA-256)`, async (t) => {
    const origin = await testOrigin()
    const mw = proxy({ upstream: [origin.url] })
    const app = await serve(transport, mw)
    t.after(() => Promise.all([app.close(), mw.proxy.close(), origin.close()]))

    const up = await upload(`${app.url}/up`, BIG)
    assert.equal(up.status, 200)
    assert.equal(origin.arrivals[0].bytes, BIG)
    assert.equal(origin.arrivals[0].sha256, up.sha256)

    const down = await download(`${app.url}/big`)
    assert.equal(down.status, 200)
    assert.equal(down.bytes, BIG)
    assert.equal(down.sha256, BIG_SHA256)
  })

  test(`${name}: a client that leaves mid-download closes the origin's response`, { timeout: 20_000 }, async (t) => {
    const origin = await testOrigin()
    const mw = proxy({ upstream: [origin.url] })
    const app = await serve(transport, mw)
    t.after(() => Promise.all([app.close(), mw.proxy.close(), origin.close()]))

    await leaveMidDownload(`${app.url}/endless`)
    await origin.endlessClosed
    assert.equal((await call(`${app.url}/next`)).body.toString(), 'origin saw GET /next')
  })

  test(`${name}: WebSocket echo by mw.upgrade with mount and by proxy.upgradeHandler`, async (t) => {
    const origin = await testOrigin()
    const ws = scheme === 'https' ? 'wss' : 'ws'
    const mw = proxy({ upstream: [origin.url], mount: '/google' })
    const mounted = await serve(transport, mountAt('/google', mw, ownRoutes))
    mounted.server.on('upgrade', mw.upgrade)
    const p = createProxy({ routes: [{ host: 'ws.test', upstream: [origin.url] }] })
    const byHost = await serve(transport, (req, res) => p.handler(req, res, () => ownRoutes(req, res)))
    byHost.server.on('upgrade', p.upgradeHandler)
    t.after(() => Promise.all([mounted.close(), byHost.close(), mw.proxy.close(), p.close(), origin.close()]))

    const first = await openWebSocket(`${ws}://127.0.0.1:${mounted.port}/google/chat?room=1`)
    assert.equal(await echo(first, 'through the mount'), 'through the mount')
    assert.equal(origin.handshakes[0].url, '/chat?room=1')
    assert.equal(origin.handshakes[0].headers['x-forwarded-prefix'], '/google')
    assert.equal(origin.handshakes[0].headers['x-forwarded-proto'], scheme)
    await closeWebSocket(first)

    const second = await openWebSocket(`${ws}://127.0.0.1:${byHost.port}/live`, { host: 'ws.test' })
    assert.equal(await echo(second, 'by host'), 'by host')
    assert.equal(origin.handshakes[1].url, '/live')
    assert.equal(origin.handshakes[1].headers.host, 'ws.test')
    await closeWebSocket(second)
    await assert.rejects(openWebSocket(`${ws}://127.0.0.1:${byHost.port}/live`, { host: 'other.test' }), /handshake answered 404/)
  })
}

// --- HTTP/2 requests ------------------------------------------------------------------------------------------


async function serveH2 (listener: Listener): Promise<App & { session: http2.ClientHttp2Session }> {
  const app = await serve(TRANSPORTS[2], listener)
  const session = http2.connect(`https://localhost:${app.port}`, { ca: TLS.cert })
  session.on('error', () => {})
  await once(session, 'connect')
  const close = app.close
  return Object.assign(app, { session, close: async () => { session.destroy(); await close() } })
}

/** One HTTP/2 request on `session`; each string or Buffer is one write. */
function h2call (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, chunks: (string | Buffer)[] = []): Promise<CallReply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: chunks.length === 0 })
    const body: Buffer[] = []
    let head: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader = {}
    stream.on('response', (h) => { head = h })
    stream.on('data', (c: Buffer) => body.push(c))
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head as IncomingHttpHeaders, body: Buffer.concat(body) }))
    stream.on('error', reject)
    if (chunks.length > 0) {
      for (const c of chunks) stream.write(c)
      stream.end()
    }
  })
}

/** The app of the HTTP/2 body cases: parsers under /parsed, /raw and /drained, the bare proxy elsewhere. */
function bodyApp (mw: Middleware & Listener): Listener {
  return mountAt('/parsed', parseBody('json', mw), mountAt('/raw', parseBody('raw', mw), mountAt('/drained', parseBody('nothing', mw), mw)))
}

test('node:http2: HTTP/2 requests through proxy() under a mount path and createProxy().handler by :authority', { timeout: 20_000 }, async (t) => {
  const origin = await testOrigin()
  const mw = proxy({ upstream: [origin.url] })
  const p = createProxy({ routes: [{ host: 'api.test', upstream: [origin.url] }] })
  const app = await serveH2(mountAt('/google', mw, (req, res) => p.handler(req, res, () => ownRoutes(req, res))))
  t.after(() => Promise.all([app.close(), mw.proxy.close(), p.close(), origin.close()]))

  const search = await h2call(app.session, { ':path': '/google/search?q=1' })
  assert.equal(search.status, 200)
  assert.equal(search.body.toString(), 'origin saw GET /search?q=1')
  const seen = origin.arrivals[0]
  assert.equal(seen.headers['x-forwarded-prefix'], '/google')
  assert.equal(seen.headers['x-forwarded-proto'], 'https')
  // RFC 9113 §8.3.1: a proxy forwarding to HTTP/1.1 makes Host from :authority.
  assert.equal(seen.headers.host, `localhost:${app.port}`)
  for (const name of Object.keys(seen.headers)) assert.ok(!name.startsWith(':'), `pseudo-header ${name} forwarded`)

  const api = await h2call(app.session, { ':path': '/own?x=1', ':authority': 'api.test' })
  assert.equal(api.body.toString(), 'origin saw GET /own?x=1')
  assert.equal(origin.arrivals[1].headers.host, 'api.test')
  const own = await h2call(app.session, { ':path': '/own', ':authority': 'other.test' })
  assert.equal(own.body.toString(), 'own route')
  assert.equal(origin.arrivals.length, 2)
})

test('node:http2: HTTP/2 bodies with Content-Length arrive whole, also after a parser', { timeout: 20_000 }, async (t) => {
  const origin = await testOrigin()
  const mw = proxy({ upstream: [origin.url] })
  const app = await serveH2(bodyApp(mw))
  t.after(() => Promise.all([app.close(), mw.proxy.close(), origin.close()]))

  const json = '{ "a" : 1 }'
  const headers = { ':method': 'POST', 'content-type': 'application/json', 'content-length': json.length }
  const direct = await h2call(app.session, { ...headers, ':path': '/sized' }, [json.slice(0, 4), json.slice(4)])
  assert.equal(direct.status, 200)
  assert.equal(origin.arrivals[0].body.toString(), json)
  await h2call(app.session, { ...headers, ':path': '/parsed/x' }, [json])
  assert.equal(origin.arrivals[1].body.toString(), '{"a":1}')
  assert.equal(origin.arrivals[1].headers['content-length'], '7')
  await h2call(app.session, { ...headers, ':path': '/raw/x' }, [json])
  assert.equal(origin.arrivals[2].body.toString(), json)
  const drained = await h2call(app.session, { ...headers, ':path': '/drained/x' }, [json])
  assert.equal(drained.status, 500)
  assert.match(drained.body.toString(), /PORTICO_ERR_BODY_CONSUMED/)
  assert.equal(origin.requests.length, 3)
})

test('node:http2: HTTP/2 bodies without Content-Length (END_STREAM framing) arrive whole, also after a parser', { timeout: 20_000 }, async (t) => {
  const origin = await testOrigin()
  const mw = proxy({ upstream: [origin.url] })
  const app = await serveH2(bodyApp(mw))
  t.after(() => Promise.all([app.close(), mw.proxy.close(), origin.close()]))

  const json = '{ "a" : 1 }'
  const headers = { ':method': 'POST', 'content-type': 'application/json' }
  const direct = await h2call(app.session, { ...headers, ':path': '/streamed' }, [json.slice(0, 4), json.slice(4)])
  assert.equal(direct.status, 200)
  assert.equal(origin.arrivals[0].body.toString(), json)
  await h2call(app.session, { ...headers, ':path': '/parsed/x' }, [json])
  assert.equal(origin.arrivals[1].body.toString(), '{"a":1}')
  await h2call(app.session, { ...headers, ':path': '/raw/x' }, [json])
  assert.equal(origin.arrivals[2].body.toString(), json)
  const drained = await h2call(app.session, { ...headers, ':path': '/drained/x' }, [json])
  assert.equal(drained.status, 500)
  assert.equal(origin.requests.length, 3)
})

test('node:http2: 100 MiB upload and 100 MiB download over HTTP/2 arrive intact (SHA-256)', { timeout: 60_000 }, async (t) => {
  const origin = await testOrigin()
  const mw = proxy({ upstream: [origin.url] })
  const app = await serveH2(mw)
  t.after(() => Promise.all([app.close(), mw.proxy.close(), origin.close()]))

  const hash = createHash('sha256')
  const up = await new Promise<number>((resolve, reject) => {
    const stream = app.session.request({ ':method': 'POST', ':path': '/up', 'content-type': 'application/octet-stream', 'content-length': BIG })
    stream.on('response', (h) => resolve(Number(h[':status'])))
    stream.on('error', reject)
    stream.resume()
    pumpInto(stream, BIG, hash)
  })
  assert.equal(up, 200)
  assert.equal(origin.arrivals[0].bytes, BIG)
  assert.equal(origin.arrivals[0].sha256, hash.digest('hex'))

  const down = await new Promise<{ bytes: number, sha256: string }>((resolve, reject) => {
    const stream = app.session.request({ ':path': '/big' }, { endStream: true })
    const h = createHash('sha256')
    let bytes = 0
    stream.on('data', (c: Buffer) => { h.update(c); bytes += c.length })
    stream.on('end', () => resolve({ bytes, sha256: h.digest('hex') }))
    stream.on('error', reject)
  })
  assert.equal(down.bytes, BIG)
  assert.equal(down.sha256, BIG_SHA256)
})

test('node:http2: an HTTP/2 stream cancelled mid-download closes the origin\'s response', { timeout: 20_000 }, async (t) => {
  const origin = await testOrigin()
  const mw = proxy({ upstream: [origin.url] })
  const app = await serveH2(mw)
  t.after(() => Promise.all([app.close(), mw.proxy.close(), origin.close()]))

  await new Promise<void>((resolve, reject) => {
    const stream = app.session.request({ ':path': '/endless' }, { endStream: true })
    let bytes = 0
    stream.on('response', (h) => { if (h[':status'] !== 200) reject(new Error(`status ${h[':status']}`)) })
    stream.on('data', (c: Buffer) => {
      bytes += c.length
      if (bytes >= MiB && !stream.closed) {
        stream.close(http2.constants.NGHTTP2_CANCEL)
        resolve()
      }
    })
    stream.on('error', () => {})
  })
  await origin.endlessClosed
  assert.equal((await h2call(app.session, { ':path': '/next' })).body.toString(), 'origin saw GET /next')
})
