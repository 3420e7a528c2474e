import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import http from 'node:http'
import { rawExchange, send, startOrigin, startProxy } from '../helpers/servers.js'

test('request headers: hop-by-hop removed, X-Forwarded-* and Via added, Host preserved', async (t) => {
  const origin = await startOrigin()
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  await send(`${proxy.url}/h`, {
    headers: {
      host: 'App.test:9000',
      connection: 'keep-alive, x-private',
      'x-private': 'secret',
      'keep-alive': 'timeout=9',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-host': 'spoofed.test',
      via: '1.1 edge',
      'x-custom': 'kept'
    }
  })
  const h = origin.requests[0].headers
  assert.equal(h.host, 'App.test:9000')
  assert.equal(h['x-private'], undefined)
  assert.equal(h['keep-alive'], undefined)
  assert.equal(h['proxy-connection'], undefined)
  assert.equal(h.te, undefined)
  assert.notEqual(h.connection, 'keep-alive, x-private')
  assert.equal(h['x-forwarded-for'], '127.0.0.1', 'a client\'s X-Forwarded-For is replaced, not appended to (no trustedProxies)')
  assert.equal(h['x-forwarded-proto'], 'http')
  assert.equal(h['x-forwarded-host'], 'App.test:9000')
  assert.equal(h.via, '1.1 edge, 1.1 portico')
  assert.equal(h['x-custom'], 'kept')
  assert.equal(h.forwarded, undefined)
})

test('Forwarded (RFC 7239) when enabled; preserveHost: false sends the node host', async (t) => {
  const origin = await startOrigin()
  const proxy = await startProxy({
    routes: [{ host: '*', upstream: [origin.url], preserveHost: false, headers: { forwarded: true, via: 'edge-1' } }]
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  await send(`${proxy.url}/`, { headers: { host: 'public.test', forwarded: 'for=192.0.2.1' } })
  const h = origin.requests[0].headers
  assert.equal(h.host, `127.0.0.1:${origin.port}`)
  assert.equal(h.forwarded, 'for=127.0.0.1;proto=http;host=public.test', 'the client\'s own element is dropped')
  assert.equal(h.via, '1.1 edge-1')
})

test('response headers: hop-by-hop removed, repeated Set-Cookie kept, reason phrase relayed', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(201, 'Made It', [
      'Set-Cookie', 'a=1; Path=/', 'Set-Cookie', 'b=2; HttpOnly', 'Connection', 'x-hop', 'X-Hop', 'gone',
      'Keep-Alive', 'timeout=99', 'X-Multi', 'one', 'X-Multi', 'two', 'Content-Length', '2'
    ])
    res.end('ok')
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const r = await send(`${proxy.url}/`)
  assert.equal(r.status, 201)
  assert.equal(r.statusMessage, 'Made It')
  assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly'])
  assert.equal(r.headers['x-hop'], undefined)
  assert.notEqual(r.headers['keep-alive'], 'timeout=99')
  const multi = r.rawHeaders.filter((_v, i, a) => i % 2 === 1 && a[i - 1] === 'X-Multi')
  assert.deepEqual(multi, ['one', 'two'])
  assert.equal(r.body.toString(), 'ok')
})

test('paths and queries reach the node byte-exact; every method, HEAD included', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.setHeader('content-length', '5')
    res.end(req.method === 'HEAD' ? undefined : 'hello')
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const target = '/a%2Fb/./c/../%7Euser;p=1?q=%E2%82%AC&x=a+b&&y=%zz#'
  const reply = await rawExchange(proxy.port, `GET ${target.slice(0, -1)} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`)
  assert.match(reply, /^HTTP\/1\.1 200 /)
  assert.equal(origin.requests[0].url, target.slice(0, -1))
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PURGE']) {
    const r = await send(`${proxy.url}/m`, { method, body: 'x', headers: { 'content-length': '1' } })
    assert.equal(r.status, 200, method)
    assert.equal(origin.requests.at(-1)!.method, method)
  }
  const head = await send(`${proxy.url}/h`, { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(head.headers['content-length'], '5')
  assert.equal(head.body.length, 0)
  assert.equal(origin.requests.at(-1)!.method, 'HEAD')
})

test('trailers are relayed', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { trailer: 'x-checksum', 'content-type': 'text/plain' })
    res.write('part1 ')
    res.write('part2')
    res.addTrailers({ 'x-checksum': 'abc123' })
    res.end()
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const r = await send(`${proxy.url}/`, { headers: { te: 'trailers' } })
  assert.equal(r.body.toString(), 'part1 part2')
  assert.equal(r.headers.trailer, 'x-checksum')
  assert.equal(r.trailers['x-checksum'], 'abc123')
})

test('interim responses: 103 Early Hints relayed before the final response', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
    setTimeout(() => res.end('final'), 20)
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const events: string[] = []
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request({ port: proxy.port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
      events.push(`final ${res.statusCode}`)
      let b = ''
      res.on('data', (c) => { b += c })
      res.on('end', () => resolve(b))
    })
    req.on('information', (info) => events.push(`${info.statusCode} ${String(info.headers.link)}`))
    req.on('error', reject)
    req.end()
  })
  assert.deepEqual(events, ['103 </style.css>; rel=preload; as=style', 'final 200'])
  assert.equal(body, 'final')
})

test('Expect: 100-continue is answered and the body still arrives', async (t) => {
  const origin = await startOrigin((req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => { n += c.length })
    req.on('end', () => res.end(`got ${n}`))
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(proxy.port, '127.0.0.1')
    let data = ''
    socket.on('data', (c) => {
      data += c.toString()
      if (data.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !data.includes('200')) socket.write('hello')
    })
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
    socket.write('POST /u HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
  })
  assert.match(reply, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /)
  assert.match(reply, /got 5$/)
  assert.equal(origin.requests[0].headers.expect, undefined)
})
