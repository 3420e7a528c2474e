import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { createProxy } from '../../src/index.js'
import { startOrigin, writeRepeated, type Origin } from '../helpers/servers.js'
import { testCert, type TestCert } from '../helpers/tls.js'

interface H2 { port: number, session: http2.ClientHttp2Session, cert: TestCert, close: () => Promise<void> }

/** A TLS listener (h2 + http/1.1) in front of `origin`, and an HTTP/2 client session to it. */
async function h2Proxy (origin: Origin): Promise<H2> {
  const cert = await testCert(['h2.test'])
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: 0, tls: true }],
    tls: { certificates: [{ hosts: ['h2.test'], cert: cert.certFile, key: cert.keyFile }] },
    upstreams: { '*': [origin.url] }
  })
  const [addr] = await proxy.listen()
  // The client queues a whole 32 MiB upload at once: lift its own session memory cap.
  const session = http2.connect(`https://127.0.0.1:${addr.port}`, { ca: cert.cert, servername: 'h2.test', maxSessionMemory: 128 })
  session.on('error', () => {})
  return { port: addr.port, session, cert, close: async () => { session.close(); await proxy.close({ drainTimeout: 500 }) } }
}

function get (session: http2.ClientHttp2Session, path: string, body?: Buffer): Promise<{ status: number, body: Buffer, headers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': body === undefined ? 'GET' : 'POST', ':authority': 'h2.test' }, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let headers: http2.IncomingHttpHeaders = {}
    stream.on('response', (h) => { headers = h })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({ status: Number(headers[':status']), body: Buffer.concat(chunks), headers }))
    stream.on('error', reject)
    if (body !== undefined) stream.end(body)
  })
}

test('HTTP/2 to HTTP/1.1: :authority becomes Host, many concurrent streams on one connection', async (t) => {
  const origin = await startOrigin((req, res) => res.end(`${req.headers.host} ${req.url} ${req.httpVersion}`))
  const h2 = await h2Proxy(origin)
  t.after(() => Promise.all([h2.close(), origin.close()]))
  const replies = await Promise.all(Array.from({ length: 200 }, (_v, i) => get(h2.session, `/s/${i}?q=${i}`)))
  replies.forEach((r, i) => {
    assert.equal(r.status, 200)
    assert.equal(r.body.toString(), `h2.test /s/${i}?q=${i} 1.1`)
    assert.equal(r.headers.connection, undefined, 'no connection-specific fields over HTTP/2')
  })
  assert.equal(origin.requests[0].headers.connection !== 'upgrade', true)
})

test('a large upload on one stream while other streams complete', async (t) => {
  const origin = await startOrigin((req, res) => {
    if (req.method === 'POST') {
      const h = createHash('sha256')
      req.on('data', (c: Buffer) => h.update(c))
      req.on('end', () => res.end(h.digest('hex')))
      return
    }
    res.end('small')
  })
  const h2 = await h2Proxy(origin)
  t.after(() => Promise.all([h2.close(), origin.close()]))
  const big = Buffer.alloc(32 * 1024 * 1024)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
  const upload = get(h2.session, '/upload', big)
  const small = await Promise.all(Array.from({ length: 20 }, () => get(h2.session, '/small')))
  assert.ok(small.every((r) => r.body.toString() === 'small'))
  assert.equal((await upload).body.toString(), createHash('sha256').update(big).digest('hex'))
})

test('stream resets propagate: a client reset aborts the upstream request; an upstream failure resets the stream', async (t) => {
  let upstreamClosed!: () => void
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  const origin = await startOrigin((req, res) => {
    if (req.url === '/die') {
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) })
      res.write(Buffer.alloc(64 * 1024))
      setTimeout(() => req.socket.destroy(), 20)
      return
    }
    if (req.url === '/ok') {
      res.end('ok')
      return
    }
    res.writeHead(200)
    const tick = setInterval(() => res.write('.'), 5)
    res.on('close', () => { clearInterval(tick); upstreamClosed() })
  })
  const h2 = await h2Proxy(origin)
  t.after(() => Promise.all([h2.close(), origin.close()]))

  const stream = h2.session.request({ ':path': '/forever', ':authority': 'h2.test' })
  await new Promise((resolve) => stream.once('data', resolve))
  stream.close(http2.constants.NGHTTP2_CANCEL)
  await closed

  const outcome = await new Promise<string>((resolve) => {
    const s = h2.session.request({ ':path': '/die', ':authority': 'h2.test' })
    s.on('data', () => {})
    s.on('end', () => resolve(s.rstCode === 0 ? 'complete' : `reset ${s.rstCode}`))
    s.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`))
    s.on('close', () => resolve(s.rstCode === 0 ? 'complete' : `reset ${s.rstCode}`))
  })
  assert.notEqual(outcome, 'complete')
  // The connection survives the reset streams.
  assert.equal((await get(h2.session, '/ok')).body.toString(), 'ok')
})

test('curl --http2 through the TLS listener', { skip: await curlHasHttp2() ? false : 'curl without HTTP/2' }, async (t) => {
  const origin = await startOrigin((_req, res) => { res.writeHead(200, { 'content-length': '1024' }); writeRepeated(res, Buffer.alloc(1024, 97), 1024) })
  const h2 = await h2Proxy(origin)
  t.after(() => Promise.all([h2.close(), origin.close()]))
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    execFile('curl', ['-s', '--http2', '--cacert', h2.cert.certFile, '--resolve', `h2.test:${h2.port}:127.0.0.1`,
      '-o', '/dev/null', '-w', '%{http_version} %{http_code} %{size_download}', `https://h2.test:${h2.port}/`], (err, stdout) => err ? reject(err) : resolve({ stdout }))
  })
  assert.equal(stdout, '2 200 1024')
})

async function curlHasHttp2 (): Promise<boolean> {
  return new Promise((resolve) => execFile('curl', ['-V'], (err, stdout) => resolve(err === null && /nghttp2|HTTP2/.test(stdout))))
}

test('WebSocket over HTTP/2 (RFC 8441 extended CONNECT) tunnelled to an HTTP/1.1 WebSocket node', async (t) => {
  const { WebSocketServer } = await import('ws')
  const origin = await startOrigin()
  const wss = new WebSocketServer({ server: origin.server })
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`h2 ws: ${d.toString()}`)))
  const h2 = await h2Proxy(origin)
  t.after(async () => { wss.close(); await Promise.all([h2.close(), origin.close()]) })
  await new Promise<void>((resolve) => {
    if (h2.session.remoteSettings.enableConnectProtocol === true) resolve()
    else h2.session.once('remoteSettings', () => resolve())
  })
  assert.equal(h2.session.remoteSettings.enableConnectProtocol, true)
  const stream = h2.session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/chat', ':scheme': 'https', ':authority': 'h2.test', 'sec-websocket-version': '13' })
  const [headers] = await new Promise<[http2.IncomingHttpHeaders]>((resolve) => stream.once('response', (h) => resolve([h])))
  assert.equal(headers[':status'], 200)
  // One masked text frame (RFC 6455 §5.2), then read one unmasked text frame back.
  const payload = Buffer.from('hello')
  const mask = Buffer.from([1, 2, 3, 4])
  stream.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]))
  const reply = await new Promise<Buffer>((resolve) => {
    let acc = Buffer.alloc(0)
    stream.on('data', (c: Buffer) => {
      acc = Buffer.concat([acc, c])
      if (acc.length >= 2 && acc.length >= 2 + (acc[1] & 0x7f)) resolve(acc)
    })
  })
  assert.equal(reply[0], 0x81)
  assert.equal(reply.subarray(2, 2 + (reply[1] & 0x7f)).toString(), 'h2 ws: hello')
  stream.close()
})

test('trailers from an HTTP/1.1 node reach an HTTP/2 client', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { trailer: 'x-checksum' })
    res.write('body')
    res.addTrailers({ 'x-checksum': 'abc' })
    res.end()
  })
  const h2 = await h2Proxy(origin)
  t.after(() => Promise.all([h2.close(), origin.close()]))
  const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    const stream = h2.session.request({ ':path': '/t', ':authority': 'h2.test', te: 'trailers' })
    stream.on('trailers', (tr) => resolve(tr))
    stream.on('data', () => {})
    stream.on('end', () => reject(new Error('no trailers')))
    stream.on('error', reject)
  })
  assert.equal(trailers['x-checksum'], 'abc')
})
