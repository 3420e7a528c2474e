import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import Koa from 'koa'
import { WebSocket, WebSocketServer } from 'ws'
import { createProxy } from '../../src/index.js'
import { porticoFastify } from '../../src/adapters/index.js'
import { rawExchange, send, startOrigin, startProxy, type Origin } from '../helpers/servers.js'
import { MiB, generated, hashOf } from '../helpers/adapters.js'

/** An origin that hashes uploads (answering the hex digest) and streams 100 MiB downloads (digest in `served`). */
async function bulkOrigin (): Promise<Origin & { served: Promise<string>[] }> {
  const served: Promise<string>[] = []
  const origin = await startOrigin((req, res) => {
    if (req.method === 'POST') {
      hashOf(req).then(({ digest, bytes }) => res.end(`${bytes} ${digest}`), () => res.destroy())
      return
    }
    const g = generated(100 * MiB)
    served.push(g.digest)
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(100 * MiB) })
    g.stream.pipe(res)
  })
  return Object.assign(origin, { served })
}

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address() as { port: number }
  return `http://127.0.0.1:${addr.port}`
}

test('Fastify plugin: 100 MiB upload and 100 MiB download under a prefix, intact (SHA-256)', async (t) => {
  const origin = await bulkOrigin()
  const app = Fastify()
  await app.register(porticoFastify, { prefix: '/api', upstream: [origin.url] })
  const url = await listen(app)
  t.after(() => Promise.all([app.close(), origin.close()]))
  const port = new URL(url).port

  // Upload, chunked, so nothing can buffer it to count it.
  const up = generated(100 * MiB)
  const reply = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/up?x=1', agent: false, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      let b = ''
      res.on('data', (c) => { b += c })
      res.on('end', () => resolve(b))
    })
    req.on('error', reject)
    up.stream.pipe(req)
  })
  assert.equal(reply, `${100 * MiB} ${await up.digest}`)
  assert.equal(origin.requests[0].url, '/up?x=1')
  assert.equal(origin.requests[0].headers['x-forwarded-prefix'], '/api')

  const down = await new Promise<{ digest: string, bytes: number }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/api/down', agent: false }, (res) => { hashOf(res).then(resolve, reject) }).on('error', reject)
  })
  assert.equal(down.bytes, 100 * MiB)
  assert.equal(down.digest, await origin.served[0])
})

test('Fastify plugin: prefix stripped on segment boundaries, X-Forwarded-Prefix sent, the raw target kept', async (t) => {
  const origin = await startOrigin((req, res) => res.end(JSON.stringify({ url: req.url, prefix: req.headers['x-forwarded-prefix'] ?? null, host: req.headers.host })))
  const app = Fastify()
  app.get('/apix', async () => 'app route')
  await app.register(porticoFastify, { prefix: '/api', upstream: [origin.url] })
  const url = await listen(app)
  t.after(() => Promise.all([app.close(), origin.close()]))

  const seen = async (path: string): Promise<unknown> => JSON.parse((await send(url, { path, headers: { host: 'shop.test' } })).body.toString())
  assert.deepEqual(await seen('/api/users?id=1'), { url: '/users?id=1', prefix: '/api', host: 'shop.test' })
  assert.deepEqual(await seen('/api'), { url: '/', prefix: '/api', host: 'shop.test' })
  assert.deepEqual(await seen('/api?q=%20x'), { url: '/?q=%20x', prefix: '/api', host: 'shop.test' })
  assert.deepEqual(await seen('/api/a%2Fb/./c'), { url: '/a%2Fb/./c', prefix: '/api', host: 'shop.test' })
  const head = await send(`${url}/api/h`, { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(head.body.length, 0)
  assert.equal(origin.requests.at(-1)?.method, 'HEAD')
  const other = await send(`${url}/apix`)
  assert.equal(other.body.toString(), 'app route')
  assert.equal((await send(`${url}/apiz`)).status, 404)
  assert.equal(origin.requests.length, 5)

  // Nested registration: the prefixes add up.
  const nested = Fastify()
  await nested.register(async (scope) => { await scope.register(porticoFastify, { prefix: '/b', upstream: [origin.url] }) }, { prefix: '/a' })
  const nestedUrl = await listen(nested)
  t.after(() => nested.close())
  assert.deepEqual(JSON.parse((await send(`${nestedUrl}/a/b/c`, { headers: { host: 'n.test' } })).body.toString()), { url: '/c', prefix: '/a/b', host: 'n.test' })
})

test('Fastify plugin: bodies reach the node byte-exact (no parser in the way); the app still parses its own routes', async (t) => {
  const origin = await startOrigin((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.setHeader('content-type', 'application/octet-stream')
      res.setHeader('x-seen-type', String(req.headers['content-type']))
      res.end(Buffer.concat(chunks))
    })
  })
  const app = Fastify()
  app.post('/own', async (request) => ({ parsed: request.body }))
  await app.register(porticoFastify, { prefix: '/api', upstream: [origin.url] })
  const url = await listen(app)
  t.after(() => Promise.all([app.close(), origin.close()]))

  const bodies: [string, string][] = [
    ['application/json', '{ "a" :1,  "b":[1, 2 ], "c": "\\u00e9" }\n'],
    ['application/json', '{ not json'],
    ['text/plain; charset=utf-8', 'plain text'],
    ['application/x-www-form-urlencoded', 'a=1&a=2&b=%20'],
    ['application/vnd.custom+xml', '<x/>']
  ]
  for (const [type, body] of bodies) {
    const r = await send(`${url}/api/echo`, { method: 'POST', headers: { 'content-type': type }, body })
    assert.equal(r.status, 200, type)
    assert.equal(r.body.toString(), body, type)
    assert.equal(r.headers['x-seen-type'], type)
  }
  // No Content-Type at all, and a PUT.
  const bare = await send(`${url}/api/bare`, { method: 'PUT', body: Buffer.from([0, 1, 2, 255]) })
  assert.deepEqual([...bare.body], [0, 1, 2, 255])

  const own = await send(`${url}/own`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":[1,2]}' })
  assert.deepEqual(JSON.parse(own.body.toString()), { parsed: { x: [1, 2] } })
})

test('Fastify plugin with a full Proxy: host routing; unmatched requests fall through to the app', async (t) => {
  const origin = await startOrigin((req, res) => res.end(`origin ${req.url}`))
  const proxy = createProxy({ upstreams: { 'api.test': [origin.url] } })
  const app = Fastify()
  app.setNotFoundHandler((request, reply) => { void reply.code(404).send(`app 404 ${request.url}`) })
  app.get('/hello', async () => 'app hello')
  await app.register(porticoFastify, { proxy })
  const url = await listen(app)
  t.after(() => Promise.all([app.close(), proxy.close(), origin.close()]))

  const routed = await send(`${url}/x?y=1`, { headers: { host: 'api.test' } })
  assert.equal(routed.body.toString(), 'origin /x?y=1')
  const missed = await send(`${url}/x?y=1`, { headers: { host: 'other.test' } })
  assert.equal(missed.status, 404)
  assert.equal(missed.body.toString(), 'app 404 /x?y=1')
  const posted = await send(`${url}/form`, { method: 'POST', headers: { host: 'other.test', 'content-type': 'application/json' }, body: '{}' })
  assert.equal(posted.body.toString(), 'app 404 /form')
  // The app's own, more specific routes win over the plugin's catch-all, for every host.
  assert.equal((await send(`${url}/hello`, { headers: { host: 'other.test' } })).body.toString(), 'app hello')
  assert.equal((await send(`${url}/hello`, { headers: { host: 'api.test' } })).body.toString(), 'app hello')
  assert.equal(origin.requests.length, 1)

  // The caller's Proxy outlives the app.
  await app.close()
  assert.equal(proxy.draining, false)
})

test('Fastify plugin: the Proxy it created closes with the app (its keep-alive connections to the node end)', { timeout: 30_000 }, async (t) => {
  const origin = await startOrigin((_req, res) => res.end('ok'))
  // Both sides would keep the connection for a minute: only closing the pool ends it sooner.
  origin.server.keepAliveTimeout = 60_000
  const upstreamSockets: net.Socket[] = []
  origin.server.on('connection', (s: net.Socket) => upstreamSockets.push(s))
  const app = Fastify()
  await app.register(porticoFastify, { prefix: '/api', upstream: { nodes: [origin.url], keepAlive: '60s' } })
  const url = await listen(app)
  t.after(() => origin.close())
  assert.equal((await send(`${url}/api/x`)).body.toString(), 'ok')
  assert.equal(upstreamSockets.length, 1)
  const closed = once(upstreamSockets[0], 'close')
  await app.close()
  await closed
})

test('Fastify plugin: app hooks run before forwarding', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('secret'))
  const app = Fastify()
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== 'Bearer ok') return reply.code(401).send('login first')
  })
  await app.register(porticoFastify, { prefix: '/api', upstream: [origin.url] })
  const url = await listen(app)
  t.after(() => Promise.all([app.close(), origin.close()]))
  const denied = await send(`${url}/api/x`)
  assert.equal(denied.status, 401)
  assert.equal(origin.requests.length, 0)
  const allowed = await send(`${url}/api/x`, { headers: { authorization: 'Bearer ok' } })
  assert.equal(allowed.body.toString(), 'secret')
})

test('Fastify plugin: a client that goes away aborts the upstream request', async (t) => {
  let upstreamClosed!: () => void
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200)
    res.write('start')
    const tick = setInterval(() => res.write('.'), 5)
    res.on('close', () => { clearInterval(tick); upstreamClosed() })
  })
  const app = Fastify()
  await app.register(porticoFastify, { prefix: '/api', upstream: [origin.url] })
  const url = await listen(app)
  t.after(() => Promise.all([app.close(), origin.close()]))
  const req = http.get({ host: '127.0.0.1', port: new URL(url).port, path: '/api/stream', agent: false })
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  await once(res, 'data')
  req.destroy()
  await closed
})

/** An origin with a WebSocket echo server; handshakes recorded. */
async function wsOrigin (): Promise<Origin & { wss: WebSocketServer, handshakes: http.IncomingMessage[] }> {
  const origin = await startOrigin((_req, res) => res.end('plain'))
  const handshakes: http.IncomingMessage[] = []
  const wss = new WebSocketServer({ noServer: true })
  origin.server.on('upgrade', (req, socket, head) => {
    handshakes.push(req)
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })))
  })
  return Object.assign(origin, { wss, handshakes })
}

function open (url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers })
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

test('Fastify plugin: WebSocket echo under the prefix, through the app hooks; other handshakes left to Fastify', async (t) => {
  const origin = await wsOrigin()
  const app = Fastify()
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers['x-deny'] !== undefined) return reply.code(403).send('denied')
  })
  app.get('/plain', async () => 'app plain')
  await app.register(porticoFastify, { prefix: '/live', upstream: [origin.url] })
  const url = await listen(app)
  t.after(async () => { origin.wss.close(); await Promise.all([app.close(), origin.close()]) })
  const port = Number(new URL(url).port)

  const ws = await open(`ws://127.0.0.1:${port}/live/ws?room=1`)
  ws.send('hello')
  const [msg] = await once(ws, 'message') as [Buffer]
  assert.equal(msg.toString(), 'hello')
  const big = randomBytes(4 * MiB)
  ws.send(big)
  const [echo] = await once(ws, 'message') as [Buffer]
  assert.ok(echo.equals(big))
  assert.equal(origin.handshakes[0].url, '/ws?room=1')
  assert.equal(origin.handshakes[0].headers['x-forwarded-prefix'], '/live')
  assert.equal(origin.handshakes[0].headers['x-forwarded-for'], '127.0.0.1')
  ws.close()
  await once(ws, 'close')

  const upgrade = (path: string, extra = ''): Promise<string> => rawExchange(port,
    `GET ${path} HTTP/1.1\r\nHost: x.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`)
  assert.match(await upgrade('/live/ws', 'X-Deny: 1\r\n'), /^HTTP\/1\.1 403 /)
  // Outside the prefix, Fastify answers as it would without the plugin: its route, or its 404.
  assert.match(await upgrade('/plain'), /^HTTP\/1\.1 200 [^]*app plain$/)
  assert.match(await upgrade('/elsewhere'), /^HTTP\/1\.1 404 /)
  assert.equal(origin.handshakes.length, 1)
})

test('Fastify plugin: handshakes outside its prefix are left to the server\'s other upgrade listeners', async (t) => {
  const origin = await wsOrigin()
  const app = Fastify()
  const local = new WebSocketServer({ noServer: true })
  local.on('connection', (ws) => ws.on('message', (d) => ws.send(`local ${d.toString()}`)))
  app.server.on('upgrade', (req, socket, head) => {
    if (req.url === '/local') local.handleUpgrade(req, socket, head, (ws) => local.emit('connection', ws, req))
  })
  await app.register(porticoFastify, { prefix: '/live', upstream: [origin.url] })
  const url = await listen(app)
  t.after(async () => { local.close(); origin.wss.close(); await Promise.all([app.close(), origin.close()]) })
  const port = new URL(url).port

  const proxied = await open(`ws://127.0.0.1:${port}/live/ws`)
  proxied.send('a')
  assert.equal((await once(proxied, 'message') as [Buffer])[0].toString(), 'a')
  const mine = await open(`ws://127.0.0.1:${port}/local`)
  mine.send('b')
  assert.equal((await once(mine, 'message') as [Buffer])[0].toString(), 'local b')
  proxied.close()
  mine.close()
})

test('Fastify plugin: invalid route options are reported by register as ConfigError', async () => {
  const app = Fastify()
  await assert.rejects(async () => {
    await app.register(porticoFastify, { prefix: '/api', upstream: ['ftp://nowhere'] })
  }, (err: Error & { code?: string }) => err.code === 'PORTICO_ERR_CONFIG_INVALID')
  await app.close()
})

test('a Fastify instance as an in-process upstream: a request, and 100 MiB each way (SHA-256)', async (t) => {
  const inner = Fastify()
  inner.get('/hi', async (request) => `hi from fastify via ${request.headers['x-forwarded-for']}`)
  inner.addContentTypeParser('application/octet-stream', (_request, payload, done) => {
    hashOf(payload as unknown as AsyncIterable<Buffer>).then((h) => done(null, h), (err: Error) => done(err))
  })
  inner.post('/up', { bodyLimit: 200 * MiB }, async (request) => request.body)
  const served: Promise<string>[] = []
  inner.get('/down', async (_request, reply) => {
    const g = generated(100 * MiB)
    served.push(g.digest)
    return reply.header('content-type', 'application/octet-stream').send(g.stream)
  })
  const proxy = await startProxy({ upstreams: { '*': { handler: inner } } })
  t.after(() => Promise.all([proxy.close(), inner.close()]))
  await checkFramework(proxy.url, 'hi from fastify via 127.0.0.1', served)
})

test('a Koa app as an in-process upstream: a request, and 100 MiB each way (SHA-256)', async (t) => {
  const inner = new Koa()
  const served: Promise<string>[] = []
  inner.use(async (ctx) => {
    if (ctx.path === '/hi') ctx.body = `hi from koa via ${ctx.get('x-forwarded-for')}`
    else if (ctx.path === '/up') ctx.body = await hashOf(ctx.req)
    else if (ctx.path === '/down') {
      const g = generated(100 * MiB)
      served.push(g.digest)
      ctx.type = 'application/octet-stream'
      ctx.body = g.stream
    }
  })
  const proxy = await startProxy({ upstreams: { '*': { handler: inner } } })
  t.after(() => proxy.close())
  await checkFramework(proxy.url, 'hi from koa via 127.0.0.1', served)
})

/** GET /hi, POST /up (answered with { digest, bytes } as JSON), GET /down, through a proxy. */
async function checkFramework (url: string, hello: string, served: Promise<string>[]): Promise<void> {
  const hi = await send(`${url}/hi`)
  assert.equal(hi.status, 200)
  assert.equal(hi.body.toString(), hello)

  const port = new URL(url).port
  const up = generated(100 * MiB)
  const reply = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/up', agent: false, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      let b = ''
      res.on('data', (c) => { b += c })
      res.on('end', () => resolve(b))
    })
    req.on('error', reject)
    up.stream.pipe(req)
  })
  assert.deepEqual(JSON.parse(reply), { digest: await up.digest, bytes: 100 * MiB })

  const down = await new Promise<{ digest: string, bytes: number }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/down', agent: false }, (res) => { hashOf(res).then(resolve, reject) }).on('error', reject)
  })
  assert.equal(down.bytes, 100 * MiB)
  assert.equal(down.digest, await served[0])
}
