/**
 * Portico inside a Connect app: the `proxy()` one-liner under a mount path, `createProxy().handler` with host
 * routing falling through to the app's own middleware, bodies body-parser (the JSON parser Express re-exports, used
 * the Connect way) or a hand-written middleware already read, 100 MiB each way, a client that leaves
 * mid-download, and WebSocket upgrades on the app's server.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http, { type IncomingMessage } from 'node:http'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import connect from 'connect'
import express from 'express'
import { createProxy, proxy } from '../../src/index.js'
import { send } from '../helpers/servers.js'
import { BIG, BIG_SHA256, clients, echo, post, serve, testOrigin, type ParsedRequest } from '../helpers/adapters.js'

const { upload, download, leaveMidDownload, openWebSocket } = clients()

/** body-parser middleware (typed for Express's Request) as the Connect middleware it is. */
function asConnect (mw: express.RequestHandler): connect.NextHandleFunction {
  return mw as unknown as connect.NextHandleFunction
}

/** The app's own answer for `/own`. */
function ownRoute (_req: IncomingMessage, res: http.ServerResponse): void {
  res.setHeader('content-type', 'text/plain')
  res.end('own route')
}

test(`Connect: app.use('/google', proxy(...)) forwards without the mount path, with X-Forwarded-Prefix, query byte-exact`, async (t) => {
  const origin = await testOrigin()
  const app = connect()
  const mw = proxy({ upstream: [origin.url] })
  app.use('/google', mw)
  app.use('/own', ownRoute)
  const server = await serve(app)
  t.after(() => Promise.all([server.close(), mw.proxy.close(), origin.close()]))

  const search = await send(server.url, { path: '/google/search?q=1' })
  assert.equal(search.status, 200)
  assert.equal(search.body.toString(), 'origin saw GET /search?q=1')
  const seen = origin.arrivals[0]
  assert.equal(seen.url, '/search?q=1')
  assert.equal(seen.headers['x-forwarded-prefix'], '/google')
  assert.equal(seen.headers.host, `127.0.0.1:${server.port}`)
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1')

  // Reserved and percent-encoded bytes, empty pairs and a bare mount path with a query pass as they came.
  const odd = '/a%2Fb/%7Euser;p=1?q=%E2%82%AC+x&&empty=&q=2'
  await send(server.url, { path: `/google${odd}` })
  assert.equal(origin.arrivals[1].url, odd)
  await send(server.url, { path: '/google?hl=de' })
  assert.equal(origin.arrivals[2].url, '/?hl=de')
  assert.equal(origin.arrivals[2].headers['x-forwarded-prefix'], '/google')

  const own = await send(`${server.url}/own`)
  assert.equal(own.body.toString(), 'own route')
  // A path that only starts with the mount's letters is not under it.
  const beside = await send(`${server.url}/googleplex`)
  assert.equal(beside.status, 404)
  assert.equal(beside.headers['proxy-status'], undefined)
  assert.equal(origin.arrivals.length, 3)
})

test(`Connect: createProxy().handler as middleware routes by host and falls through to the app's routes`, async (t) => {
  const origin = await testOrigin()
  const p = createProxy({ routes: [{ host: 'api.test', upstream: [origin.url] }, { host: 'static.test', path: '/assets', upstream: [origin.url] }] })
  const app = connect()
  app.use(p.handler)
  app.use('/own', ownRoute)
  const server = await serve(app)
  t.after(() => Promise.all([server.close(), p.close(), origin.close()]))

  const api = await send(`${server.url}/own?x=1`, { headers: { host: 'api.test' } })
  assert.equal(api.body.toString(), 'origin saw GET /own?x=1')
  assert.equal(origin.arrivals[0].headers.host, 'api.test')
  assert.equal(origin.arrivals[0].headers['x-forwarded-prefix'], undefined)
  const asset = await send(`${server.url}/assets/a.css`, { headers: { host: 'static.test' } })
  assert.equal(asset.body.toString(), 'origin saw GET /assets/a.css')

  // No route for the host, or none for the path on a known host: the app answers.
  for (const host of ['other.test', 'static.test']) {
    const own = await send(`${server.url}/own`, { headers: { host } })
    assert.equal(own.status, 200)
    assert.equal(own.body.toString(), 'own route')
  }
  const missing = await send(`${server.url}/nothing`, { headers: { host: 'other.test' } })
  assert.equal(missing.status, 404)
  assert.equal(missing.headers['proxy-status'], undefined, 'the 404 is the app\'s, not Portico\'s')
  assert.equal(origin.arrivals.length, 2)
})

test(`Connect: body-parser's json() and urlencoded() before the proxy: the parsed body is re-serialised with its length`, async (t) => {
  const origin = await testOrigin()
  const app = connect()
  app.use(asConnect(express.json()))
  app.use(asConnect(express.urlencoded({ extended: false })))
  const mw = proxy({ upstream: [origin.url] })
  app.use('/api', mw)
  const server = await serve(app)
  t.after(() => Promise.all([server.close(), mw.proxy.close(), origin.close()]))

  const json = '{ "name" : "portico",\n  "tags": [ "a", "b" ], "n": 1.0 }'
  const canonical = JSON.stringify(JSON.parse(json))
  const sized = await post(server.url, '/api/items', [json], { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) })
  const chunked = await post(server.url, '/api/items', [json.slice(0, 10), json.slice(10)], { 'content-type': 'application/json' })
  const form = await post(server.url, '/api/form', ['a=1&b=two+words&a=3'], { 'content-type': 'application/x-www-form-urlencoded' })
  for (const reply of [sized, chunked, form]) assert.equal(reply.status, 200)

  const [first, second, third] = origin.arrivals
  for (const a of [first, second]) {
    assert.equal(a.url, '/items')
    assert.equal(a.body.toString(), canonical)
    assert.equal(a.headers['content-length'], String(Buffer.byteLength(canonical)))
    assert.equal(a.headers['transfer-encoding'], undefined)
    assert.equal(a.headers['content-type'], 'application/json')
  }
  assert.equal(third.body.toString(), 'a=1&a=3&b=two+words')
  assert.equal(third.headers['content-length'], String(third.bytes))

  // Requests without a body pass the parsers untouched.
  const get = await send(`${server.url}/api/items?page=2`)
  assert.equal(get.body.toString(), 'origin saw GET /items?page=2')
})

test(`Connect: a parser that keeps req.rawBody: the original bytes arrive`, async (t) => {
  const origin = await testOrigin()
  const app = connect()
  app.use(asConnect(express.json({ verify: (req, _res, buf) => { (req as ParsedRequest).rawBody = buf } })))
  const mw = proxy({ upstream: [origin.url] })
  app.use('/hooks', mw)
  const server = await serve(app)
  t.after(() => Promise.all([server.close(), mw.proxy.close(), origin.close()]))

  // Signed webhooks need these exact bytes: key order, spacing, escapes and the trailing newline.
  const bytes = Buffer.from('{"b": 2,   "a": "\\u00e9", "n": 1.50, "e": "é"}\n')
  const reply = await post(server.url, '/hooks/github', [bytes], { 'content-type': 'application/json', 'content-length': bytes.length })
  assert.equal(reply.status, 200)
  const seen = origin.arrivals[0]
  assert.equal(seen.url, '/github')
  assert.ok(seen.body.equals(bytes))
  assert.equal(seen.sha256, createHash('sha256').update(bytes).digest('hex'))
  assert.equal(seen.headers['content-length'], String(bytes.length))
})

test(`Connect: a body consumed with nothing to replay gets 500 PORTICO_ERR_BODY_CONSUMED and is never forwarded`, async (t) => {
  const origin = await testOrigin()
  const app = connect()
  const mw = proxy({ upstream: [origin.url] })
  app.use('/raw', asConnect(express.raw({ type: () => true })))
  app.use('/raw', (req, _res, next) => {
    delete (req as ParsedRequest).body
    next()
  })
  app.use('/raw', mw)
  app.use('/drained', (req, _res, next) => {
    req.resume()
    req.once('end', () => next())
  })
  app.use('/drained', mw)
  const server = await serve(app)
  t.after(() => Promise.all([server.close(), mw.proxy.close(), origin.close()]))

  for (const path of ['/raw/x', '/drained/x']) {
    const reply = await post(server.url, path, ['some bytes'], { 'content-type': 'application/octet-stream', 'content-length': 10 })
    assert.equal(reply.status, 500, path)
    assert.match(reply.body, /PORTICO_ERR_BODY_CONSUMED/)
    assert.match(String(reply.headers['proxy-status']), /details="PORTICO_ERR_BODY_CONSUMED"/)
  }
  assert.equal(origin.requests.length, 0)
})

test(`Connect: 100 MiB upload and 100 MiB download through the app arrive intact (SHA-256)`, async (t) => {
  const origin = await testOrigin()
  const app = connect()
  const mw = proxy({ upstream: [origin.url] })
  app.use('/files', mw)
  const server = await serve(app)
  t.after(() => Promise.all([server.close(), mw.proxy.close(), origin.close()]))

  const up = await upload(`${server.url}/files/up`, BIG)
  assert.equal(up.status, 200)
  assert.equal(origin.arrivals[0].bytes, BIG)
  assert.equal(origin.arrivals[0].sha256, up.sha256)

  const down = await download(`${server.url}/files/big`)
  assert.equal(down.status, 200)
  assert.equal(down.bytes, BIG)
  assert.equal(down.sha256, BIG_SHA256)
})

test(`Connect: a client that leaves mid-download closes the origin's response`, { timeout: 20_000 }, async (t) => {
  const origin = await testOrigin()
  const app = connect()
  const mw = proxy({ upstream: [origin.url] })
  app.use('/files', mw)
  const server = await serve(app)
  t.after(() => Promise.all([server.close(), mw.proxy.close(), origin.close()]))

  await leaveMidDownload(`${server.url}/files/endless`)
  await origin.endlessClosed
  // The app goes on serving.
  const after = await send(`${server.url}/files/next`)
  assert.equal(after.body.toString(), 'origin saw GET /next')
})

test(`Connect: WebSocket echo through the app's server, by mw.upgrade with mount and by proxy.upgradeHandler`, async (t) => {
  const origin = await testOrigin()
  const app = connect()
  const mw = proxy({ upstream: [origin.url], mount: '/google' })
  app.use('/google', mw)
  const mounted = await serve(app)
  mounted.server.on('upgrade', mw.upgrade)

  const p = createProxy({ routes: [{ host: 'ws.test', upstream: [origin.url] }] })
  const hostApp = connect()
  hostApp.use(p.handler)
  const byHost = await serve(hostApp)
  byHost.server.on('upgrade', p.upgradeHandler)
  t.after(() => Promise.all([mounted.close(), byHost.close(), mw.proxy.close(), p.close(), origin.close()]))

  const ws = await openWebSocket(`ws://127.0.0.1:${mounted.port}/google/chat?room=1`)
  assert.equal(await echo(ws, 'through the mount'), 'through the mount')
  assert.equal(origin.handshakes[0].url, '/chat?room=1')
  assert.equal(origin.handshakes[0].headers['x-forwarded-prefix'], '/google')
  const closed = once(ws, 'close')
  ws.close()
  await closed

  const ws2 = await openWebSocket(`ws://127.0.0.1:${byHost.port}/live`, { host: 'ws.test' })
  assert.equal(await echo(ws2, 'by host'), 'by host')
  assert.equal(origin.handshakes[1].url, '/live')
  assert.equal(origin.handshakes[1].headers.host, 'ws.test')
  const closed2 = once(ws2, 'close')
  ws2.close()
  await closed2
  await assert.rejects(openWebSocket(`ws://127.0.0.1:${byHost.port}/live`, { host: 'other.test' }), /handshake answered 404/)
})
