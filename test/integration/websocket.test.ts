import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import { WebSocket, WebSocketServer } from 'ws'
import { rawExchange, startOrigin, startProxy, type Origin } from '../helpers/servers.js'

/** An origin with a WebSocket echo server on /ws; other paths answer plainly. */
async function wsOrigin (): Promise<Origin & { wss: WebSocketServer, handshakes: http.IncomingHttpHeaders[] }> {
  const origin = await startOrigin((_req, res) => res.end('plain'))
  const handshakes: http.IncomingHttpHeaders[] = []
  const wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 * 1024 })
  origin.server.on('upgrade', (req, socket, head) => {
    handshakes.push(req.headers)
    if (req.url === '/refuse') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'close-me') ws.close(4001, 'server says bye')
        else ws.send(data, { binary: isBinary })
      })
    })
  })
  return Object.assign(origin, { wss, handshakes })
}

function open (url: string, options: { headers?: Record<string, string> } = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: options.headers, maxPayload: 256 * 1024 * 1024 })
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

test('WebSocket echo through the proxy, routed by host and path, with forwarding headers', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({ routes: [{ host: 'chat.test', path: '/live', stripPrefix: true, upstream: [origin.url] }] })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const ws = await open(`ws://127.0.0.1:${proxy.port}/live/ws`, { headers: { host: 'chat.test' } })
  ws.send('hello')
  const [msg] = await once(ws, 'message') as [Buffer]
  assert.equal(msg.toString(), 'hello')
  const h = origin.handshakes[0]
  assert.equal(h['x-forwarded-for'], '127.0.0.1')
  assert.equal(h['x-forwarded-host'], 'chat.test')
  assert.equal(h.host, 'chat.test')
  assert.equal(h.upgrade, 'websocket')
  ws.close()
  await once(ws, 'close')
})

test('50 MiB messages each way arrive intact', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const ws = await open(`ws://127.0.0.1:${proxy.port}/ws`)
  const big = Buffer.alloc(50 * 1024 * 1024)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
  ws.send(big)
  const [echo] = await once(ws, 'message') as [Buffer]
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
  assert.equal(echo.length, big.length)
  assert.equal(sha(echo), sha(big))
  ws.close()
})

test('server-initiated close reaches the client with its code; client abort closes the node side', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const ws = await open(`ws://127.0.0.1:${proxy.port}/ws`)
  ws.send('close-me')
  const [code, reason] = await once(ws, 'close') as [number, Buffer]
  assert.equal(code, 4001)
  assert.equal(reason.toString(), 'server says bye')

  const ws2 = await open(`ws://127.0.0.1:${proxy.port}/ws`)
  const serverSide = [...origin.wss.clients].at(-1)!
  const closed = once(serverSide, 'close')
  ws2.terminate()
  await closed
})

test('a node refusing the upgrade: the client gets that status; no route: 404', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({ routes: [{ host: 'known.test', upstream: [origin.url] }] })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const handshake = (host: string, path: string): Promise<string> => rawExchange(proxy.port,
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
  const refused = await handshake('known.test', '/refuse')
  assert.match(refused, /^HTTP\/1\.1 403 /)
  assert.match(refused, /\r\n\r\nno$/)
  const none = await handshake('unknown.test', '/ws')
  assert.match(none, /^HTTP\/1\.1 404 /)
  assert.match(none, /PORTICO_ERR_NO_ROUTE/)
})

test('in-process upstream: an http.Server of the app own (never listening) accepts the upgrade', async (t) => {
  const appServer = http.createServer((_req, res) => res.end('app'))
  const wss = new WebSocketServer({ server: appServer })
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`in-process: ${d.toString()}`)))
  const proxy = await startProxy({ upstreams: { '*': { handler: appServer } } })
  t.after(async () => { wss.close(); await proxy.close() })
  const ws = await open(`ws://127.0.0.1:${proxy.port}/`)
  ws.send('hi')
  const [msg] = await once(ws, 'message') as [Buffer]
  assert.equal(msg.toString(), 'in-process: hi')
  ws.close()
})

test('1,000 concurrent WebSockets through one proxy', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, log: { access: false } })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const sockets: WebSocket[] = []
  for (let batch = 0; batch < 10; batch++) {
    sockets.push(...await Promise.all(Array.from({ length: 100 }, () => open(`ws://127.0.0.1:${proxy.port}/ws`))))
  }
  const replies = await Promise.all(sockets.map(async (ws, i) => {
    ws.send(`n${i}`)
    const [m] = await once(ws, 'message') as [Buffer]
    return m.toString() === `n${i}`
  }))
  assert.equal(replies.filter(Boolean).length, 1000)
  await Promise.all(sockets.map((ws) => { ws.close(); return once(ws, 'close') }))
})

test('close() with an open WebSocket: the drain deadline closes the tunnel and close() resolves', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(async () => { origin.wss.close(); await origin.close() })
  const ws = await open(`ws://127.0.0.1:${proxy.port}/ws`)
  const closed = once(ws, 'close')
  await proxy.proxy.close({ drainTimeout: 200 })
  await closed
})

test('an idle tunnel is closed after timeouts.idle', async (t) => {
  const origin = await wsOrigin()
  const proxy = await startProxy({ routes: [{ host: '*', upstream: [origin.url], timeouts: { idle: '300ms' } }] })
  t.after(async () => { origin.wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const ws = await open(`ws://127.0.0.1:${proxy.port}/ws`)
  ws.send('still alive')
  await once(ws, 'message')
  const [code] = await once(ws, 'close') as [number]
  assert.equal(code, 1006, 'closed by the proxy without a close frame')
})
