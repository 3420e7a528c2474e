/**
 * Slow clients, greedy clients and misbehaving nodes (SECURITY.md): the request body idle timeout, per-listener and
 * per-address connection limits, unsolicited interim responses from a node, and Via on responses. Raw sockets on
 * both sides where the bytes matter.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net, { type AddressInfo } from 'node:net'
import { send, startOrigin, startProxy } from '../helpers/servers.js'
import { eventually } from '../helpers/poll.js'

/** A raw client: connects, writes, collects everything until the socket closes. */
function rawClient (port: number): { socket: net.Socket, data: () => string, closed: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  return { socket, data: () => text, closed }
}

test('a body that stalls: 408 and the connection closed; the node never gets a complete request', async (t) => {
  let ended = 0
  let aborted = 0
  const origin = await startOrigin((req, res) => {
    req.on('data', () => {})
    req.on('end', () => { ended++; res.end('ok') })
    req.on('aborted', () => { aborted++ })
    req.on('close', () => { if (!req.complete) aborted++ })
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, server: { bodyTimeout: '300ms' } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const c = rawClient(proxy.port)
  c.socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789')
  await c.closed
  assert.match(c.data(), /^HTTP\/1\.1 408 /)
  assert.match(c.data(), /PORTICO_ERR_REQUEST_TIMEOUT/)
  await eventually('the node saw the request aborted', () => aborted > 0)
  assert.equal(ended, 0, 'never a complete request at the node')
  assert.equal(proxy.logs.find((l) => l.error === 'PORTICO_ERR_REQUEST_TIMEOUT')?.status, 408)
})

test('a body that stalls after the response started: both sides are aborted', async (t) => {
  let nodeClosed = false
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('started')
    req.on('data', () => {})
    res.on('close', () => { nodeClosed = true })
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, server: { bodyTimeout: '300ms' } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const c = rawClient(proxy.port)
  c.socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123')
  await c.closed
  assert.match(c.data(), /^HTTP\/1\.1 200 /)
  assert.doesNotMatch(c.data(), /\r\n0\r\n\r\n$/, 'the chunked response was not completed falsely')
  await eventually('the node side was aborted', () => nodeClosed)
})

test('a body that flows slowly but steadily is not cut off; bodyTimeout 0 turns the watch off', async (t) => {
  const origin = await startOrigin((req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => { n += c.length })
    req.on('end', () => res.end(`got ${n}`))
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, server: { bodyTimeout: '400ms' } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const c = rawClient(proxy.port)
  c.socket.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nConnection: close\r\n\r\n')
  for (let i = 0; i < 6; i++) {
    await new Promise((resolve) => setTimeout(resolve, 150))
    c.socket.write('x')
  }
  await c.closed
  assert.match(c.data(), /^HTTP\/1\.1 200 /)
  assert.match(c.data(), /got 6$/)
})

test('maxConnectionsPerIp: the connection over the limit is closed at once and counted; trusted proxies are exempt', async (t) => {
  const origin = await startOrigin()
  const { createProxy } = await import('../../src/index.js')
  const limited = createProxy({ listen: [{ host: '127.0.0.1', port: 0, maxConnectionsPerIp: 2 }], upstreams: { '*': [origin.url] } })
  const [addr] = await limited.listen()
  t.after(() => Promise.all([limited.close(), origin.close()]))
  const a = rawClient(addr.port)
  const b = rawClient(addr.port)
  await Promise.all([new Promise((resolve) => a.socket.once('connect', resolve)), new Promise((resolve) => b.socket.once('connect', resolve))])
  const c = rawClient(addr.port)
  c.socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n')
  await c.closed
  assert.equal(c.data(), '', 'closed before any byte of HTTP')
  assert.equal(limited.refusedConnections().maxConnectionsPerIp, 1)
  a.socket.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await a.closed
  assert.match(a.data(), /^HTTP\/1\.1 200 /, 'the connections within the limit are served')
  await eventually('a slot is free again', async () => (await send(`${addr.url}/`)).status === 200)
  b.socket.destroy()

  const trusting = createProxy({ listen: [{ host: '127.0.0.1', port: 0, maxConnectionsPerIp: 1 }], trustedProxies: ['loopback'], upstreams: { '*': [origin.url] } })
  const [taddr] = await trusting.listen()
  t.after(() => trusting.close())
  const many = [rawClient(taddr.port), rawClient(taddr.port), rawClient(taddr.port)]
  for (const m of many) m.socket.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await Promise.all(many.map((m) => m.closed))
  for (const m of many) assert.match(m.data(), /^HTTP\/1\.1 200 /)
})

test('maxConnections: a listener holds at most that many connections; the next is closed at once and counted', async (t) => {
  const origin = await startOrigin()
  const { createProxy } = await import('../../src/index.js')
  const proxy = createProxy({ listen: [{ host: '127.0.0.1', port: 0, maxConnections: 1 }], upstreams: { '*': [origin.url] } })
  const [addr] = await proxy.listen()
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const a = rawClient(addr.port)
  await new Promise((resolve) => a.socket.once('connect', resolve))
  const b = rawClient(addr.port)
  b.socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n')
  await b.closed
  assert.equal(b.data(), '')
  await eventually('counted', () => proxy.refusedConnections().maxConnections === 1)
  a.socket.destroy()
})

test('a node that sends 100 Continue unasked, then 103, then 200: the client gets the 103 and the 200', async (t) => {
  const node = net.createServer((s) => {
    s.on('error', () => {})
    s.once('data', () => {
      s.write('HTTP/1.1 100 Continue\r\n\r\n')
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n')
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal')
    })
  })
  await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve))
  const proxy = await startProxy({ upstreams: { '*': [`http://127.0.0.1:${(node.address() as AddressInfo).port}`] } })
  t.after(() => Promise.all([proxy.close(), new Promise((resolve) => node.close(resolve))]))
  const c = rawClient(proxy.port)
  c.socket.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  await c.closed
  const text = c.data()
  assert.match(text, /^HTTP\/1\.1 103 Early Hints\r\n[\s\S]*link: <\/app\.css>; rel=preload/i)
  assert.match(text, /\r\n\r\nHTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nfinal$/)
  assert.doesNotMatch(text, /HTTP\/1\.1 100/, 'the unsolicited 100 is not relayed')
})

test('a 100 split across packets, and several of them, are skipped too; a body that looks like one is left alone', async (t) => {
  const node = net.createServer((s) => {
    s.on('error', () => {})
    s.once('data', () => {
      s.write('HTTP/1.1 10')
      setTimeout(() => {
        s.write('0 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n')
        s.end('HTTP/1.1 200 OK\r\nContent-Length: 25\r\nConnection: close\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n')
      }, 20)
    })
  })
  await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve))
  const proxy = await startProxy({ upstreams: { '*': [`http://127.0.0.1:${(node.address() as AddressInfo).port}`] } })
  t.after(() => Promise.all([proxy.close(), new Promise((resolve) => node.close(resolve))]))
  const r = await send(`${proxy.url}/`)
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'HTTP/1.1 100 Continue\r\n\r\n')
})

test('Via on responses too (RFC 9110 §7.6.3), appended to the node\'s own; headers.via false adds none', async (t) => {
  const origin = await startOrigin((req, res) => {
    if (req.url === '/via') res.setHeader('via', '1.1 app')
    res.end('ok')
  })
  const proxy = await startProxy({
    routes: [{ path: '/', upstream: [origin.url] }, { path: '/quiet', upstream: [origin.url], headers: { via: false } }]
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  assert.equal((await send(`${proxy.url}/`)).headers.via, '1.1 portico')
  assert.equal((await send(`${proxy.url}/via`)).headers.via, '1.1 app, 1.1 portico')
  assert.equal((await send(`${proxy.url}/quiet`)).headers.via, undefined)
})

test('a request line without an HTTP version (HTTP/0.9 to Node\'s parser) is 400, never forwarded (found by the fuzz)', async (t) => {
  const origin = await startOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const c = rawClient(proxy.port)
  c.socket.write('GET /kHTTP/1.1\r\nHost: a\r\n\r\n')
  await c.closed
  assert.match(c.data(), /^HTTP\/1\.1 400 /)
  assert.equal(origin.requests.length, 0)
})

test('a head that trickles in (slowloris) is answered 408 at server.headersTimeout, not up to 30 s later', async (t) => {
  const origin = await startOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, server: { headersTimeout: '500ms', requestTimeout: '1s' } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const c = rawClient(proxy.port)
  c.socket.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ')
  // Bounded by the poll helper's 5 s: Node's own checking interval (30 s) would miss it.
  await eventually('408 for the unfinished head', () => c.data().startsWith('HTTP/1.1 408 '))
  assert.equal(origin.requests.length, 0)
  c.socket.destroy()
})

/** The listen(2) backlog of the listening socket on `port`, as `ss` reports it (Send-Q of a listener), or null without ss. */
async function listenBacklog (port: number): Promise<number | null> {
  const { execFile } = await import('node:child_process')
  return await new Promise((resolve) => {
    execFile('ss', ['-ltnH', `sport = :${port}`], (err, stdout) => {
      if (err !== null) {
        resolve(null)
        return
      }
      const fields = stdout.trim().split(/\s+/)
      resolve(fields.length >= 3 ? Number(fields[2]) : null)
    })
  })
}

test('listen.backlog: the kernel queue of accepted handshakes is 4096 by default (capped by somaxconn), or as configured', async (t) => {
  const { readFileSync } = await import('node:fs')
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))
  const { createProxy } = await import('../../src/index.js')
  const byDefault = createProxy({ listen: [{ host: '127.0.0.1', port: 0 }], upstreams: { '*': ['http://127.0.0.1:9'] } })
  const set = createProxy({ listen: [{ host: '127.0.0.1', port: 0, backlog: 100 }], upstreams: { '*': ['http://127.0.0.1:9'] } })
  const [a] = await byDefault.listen()
  const [b] = await set.listen()
  t.after(() => Promise.all([byDefault.close(), set.close()]))
  const first = await listenBacklog(a.port)
  if (first === null) {
    if (process.env.CI === 'true') assert.fail('ss (iproute2) is needed in CI to read listen backlogs')
    t.skip('ss (iproute2) is not installed: cannot read the listen backlog')
    return
  }
  assert.equal(first, Math.min(4096, somaxconn), 'not Node\'s 511')
  assert.equal(await listenBacklog(b.port), 100)
})
