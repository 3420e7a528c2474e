/**
 * Upgrade handshakes run the same hooks as requests (onRequest may refuse one with an answer, onUpstreamRequest edits
 * what goes upstream, onError replaces a failure answer, onResponse sees the record), and a closing proxy ends open
 * tunnels at the drain deadline also when it is embedded in an app's own server.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { createProxy, type AccessRecord } from '../../src/index.js'
import { closedPort, rawExchange, startOrigin, startProxy, type Origin } from '../helpers/servers.js'
import { eventually, within } from '../helpers/poll.js'

async function wsOrigin (): Promise<Origin & { wss: WebSocketServer, handshakes: http.IncomingHttpHeaders[] }> {
  const origin = await startOrigin((_req, res) => res.end('plain'))
  const handshakes: http.IncomingHttpHeaders[] = []
  const wss = new WebSocketServer({ noServer: true })
  origin.server.on('upgrade', (req, socket, head) => {
    handshakes.push({ ...req.headers, ':path': req.url })
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(d.toString())))
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

const handshake = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nHost: chat.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`

test('onRequest can refuse a WebSocket handshake with its own status; nothing reaches the node', async (t) => {
  const origin = await wsOrigin()
  const records: AccessRecord[] = []
  const proxy = await startProxy({
    upstreams: { '*': [origin.url] },
    hooks: {
      onRequest: (ctx) => ctx.req.headers.authorization === undefined
        ? { status: 401, headers: { 'www-authenticate': 'Bearer' }, body: 'sign in first' }
        : undefined,
      onResponse: (_ctx, record) => { records.push(record) }
    }
  })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const refused = await rawExchange(proxy.port, handshake('/ws'))
  assert.match(refused, /^HTTP\/1\.1 401 /)
  assert.match(refused, /\r\nwww-authenticate: Bearer\r\n/i)
  assert.match(refused, /\r\n\r\nsign in first$/)
  assert.equal(origin.handshakes.length, 0)
  const ws = await open(`ws://127.0.0.1:${proxy.port}/ws`, { authorization: 'Bearer ok' })
  ws.send('hello')
  const [msg] = await once(ws, 'message') as [Buffer]
  assert.equal(msg.toString(), 'hello')
  ws.close()
  await once(ws, 'close')
  await eventually('both handshakes logged', () => records.length === 2)
  assert.deepEqual(records.map((r) => [r.status, r.upgrade]), [[401, 'websocket'], [101, 'websocket']])
})

test('an async onRequest answer refuses the handshake too', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({
    upstreams: { '*': [origin.url] },
    hooks: { onRequest: async () => ({ status: 429, body: 'slow down' }) }
  })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const refused = await rawExchange(proxy.port, handshake('/ws'))
  assert.match(refused, /^HTTP\/1\.1 429 /)
  assert.equal(origin.handshakes.length, 0)
})

test('onUpstreamRequest edits the handshake sent upstream', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({
    upstreams: { '*': [origin.url] },
    hooks: {
      onUpstreamRequest: (_ctx, request) => {
        request.path = `/rewritten${request.path}`
        request.headers.set('x-tenant', 'blue')
      }
    }
  })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const ws = await open(`ws://127.0.0.1:${proxy.port}/ws`)
  ws.close()
  await once(ws, 'close')
  assert.equal(origin.handshakes[0][':path'], '/rewritten/ws')
  assert.equal(origin.handshakes[0]['x-tenant'], 'blue')
})

test('onError replaces the answer to a handshake whose node is down', async (t) => {
  const port = await closedPort()
  const proxy = await startProxy({
    upstreams: { '*': [`http://127.0.0.1:${port}`] },
    hooks: { onError: (_ctx, err) => ({ status: 503, body: `maintenance (${err.code})` }) }
  })
  t.after(() => proxy.close())
  const answer = await rawExchange(proxy.port, handshake('/ws'))
  assert.match(answer, /^HTTP\/1\.1 503 /)
  assert.match(answer, /maintenance \(PORTICO_ERR_UPSTREAM_REFUSED\)$/)
})

test('embedded without listeners: close() ends open tunnels at the drain deadline and resolves', async (t) => {
  const origin = await wsOrigin()
  const proxy = createProxy({ upstreams: { '*': [origin.url] }, log: { access: false } })
  const app = http.createServer(proxy.handler)
  app.on('upgrade', proxy.upgradeHandler)
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    origin.wss.close()
    app.closeAllConnections()
    await new Promise((resolve) => app.close(resolve))
    await origin.close()
  })
  const ws = await open(`ws://127.0.0.1:${(app.address() as AddressInfo).port}/ws`)
  ws.send('before close')
  await once(ws, 'message')
  const closed = once(ws, 'close')
  await within(proxy.close({ drainTimeout: 200 }), 5000, 'close()')
  await within(closed, 5000, 'the tunnel closing')
})
