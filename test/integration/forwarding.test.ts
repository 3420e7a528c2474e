import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { once } from 'node:events'
import { closedPort, send, startOrigin, startProxy } from '../helpers/servers.js'
import { eventually } from '../helpers/poll.js'

const MiB = 1024 * 1024

/** A deterministic pseudo-random stream of `size` bytes, hashed as it is produced. */
function generated (size: number, onDigest?: (hex: string) => void): { stream: Readable, digest: Promise<string> } {
  const hash = createHash('sha256')
  const block = randomBytes(64 * 1024)
  let left = size
  let resolveDigest!: (d: string) => void
  const digest = new Promise<string>((resolve) => { resolveDigest = resolve })
  const stream = new Readable({
    read () {
      if (left === 0) {
        const hex = hash.digest('hex')
        onDigest?.(hex)
        resolveDigest(hex)
        this.push(null)
        return
      }
      const n = Math.min(left, block.length)
      const chunk = Buffer.from(block.subarray(0, n))
      chunk.writeUInt32BE(left >>> 0, 0)
      left -= n
      hash.update(chunk)
      this.push(chunk)
    }
  })
  return { stream, digest }
}

test('100 MiB upload and 100 MiB download stream through intact (SHA-256)', async (t) => {
  let uploadDigest = ''
  const origin = await startOrigin((req, res) => {
    if (req.method === 'POST') {
      const h = createHash('sha256')
      let n = 0
      req.on('data', (c: Buffer) => { h.update(c); n += c.length })
      req.on('end', () => {
        uploadDigest = h.digest('hex')
        res.end(String(n))
      })
      return
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', trailer: 'x-sha256' })
    // The trailer is added synchronously before the stream ends, so it is there when pipe calls res.end().
    generated(100 * MiB, (hex) => res.addTrailers({ 'x-sha256': hex })).stream.pipe(res)
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))

  // Upload, chunked (no Content-Length) so nothing can be buffered to count it.
  const up = generated(100 * MiB)
  const upReply = await new Promise<string>((resolve, reject) => {
    const req = http.request({ port: proxy.port, host: '127.0.0.1', method: 'POST', path: '/up', agent: false }, (res) => {
      let b = ''
      res.on('data', (c) => { b += c })
      res.on('end', () => resolve(b))
    })
    req.on('error', reject)
    up.stream.pipe(req)
  })
  assert.equal(upReply, String(100 * MiB))
  assert.equal(uploadDigest, await up.digest)

  // Download, hashed on arrival, compared with the digest the origin sends as a trailer.
  const { digest, bytes, trailer } = await new Promise<{ digest: string, bytes: number, trailer: string | undefined }>((resolve, reject) => {
    http.get({ port: proxy.port, host: '127.0.0.1', path: '/down', agent: false, headers: { te: 'trailers' } }, (res) => {
      const h = createHash('sha256')
      let n = 0
      res.on('data', (c: Buffer) => { h.update(c); n += c.length })
      res.on('end', () => resolve({ digest: h.digest('hex'), bytes: n, trailer: res.trailers['x-sha256'] }))
      res.on('error', reject)
    }).on('error', reject)
  })
  assert.equal(bytes, 100 * MiB)
  assert.equal(digest, trailer)
})

test('a slow reader gets every byte: backpressure pauses the upstream instead of buffering', async (t) => {
  const size = 16 * MiB
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { 'content-length': String(size) })
    generated(size).stream.pipe(res)
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const received = await new Promise<number>((resolve, reject) => {
    http.get({ port: proxy.port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
      let n = 0
      res.pause()
      // Read in bursts with pauses, so the proxy's socket buffer fills and 'drain' has to resume undici.
      const tick = setInterval(() => {
        let c: Buffer | null
        for (let k = 0; k < 8 && (c = res.read() as Buffer | null) !== null; k++) n += c.length
      }, 1)
      res.on('end', () => { clearInterval(tick); resolve(n) })
      res.on('error', (e) => { clearInterval(tick); reject(e) })
      res.on('readable', () => {})
    }).on('error', reject)
  })
  assert.equal(received, size)
})

test('unreachable node: 502 with Proxy-Status connection_refused', async (t) => {
  const port = await closedPort()
  const proxy = await startProxy({ upstreams: { '*': [`http://127.0.0.1:${port}`] } })
  t.after(() => proxy.close())
  const r = await send(`${proxy.url}/`)
  assert.equal(r.status, 502)
  assert.equal(r.headers['proxy-status'], 'portico; error=connection_refused; details="PORTICO_ERR_UPSTREAM_REFUSED"')
  assert.match(r.body.toString(), /^502 Bad Gateway\nPORTICO_ERR_UPSTREAM_REFUSED\nrequest id: /)
  assert.equal(r.headers['x-request-id'], /request id: (\S+)/.exec(r.body.toString())![1])
  assert.equal(proxy.logs.find((l) => l.reqId === r.headers['x-request-id'])?.error, 'PORTICO_ERR_UPSTREAM_REFUSED')
})

test('slow node: 504 after timeouts.response with Proxy-Status http_response_timeout', async (t) => {
  const origin = await startOrigin(() => { /* never answers */ })
  const proxy = await startProxy({ routes: [{ host: '*', upstream: [origin.url], timeouts: { response: '300ms' } }] })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const r = await send(`${proxy.url}/`)
  assert.equal(r.status, 504)
  assert.match(String(r.headers['proxy-status']), /error=http_response_timeout; details="PORTICO_ERR_UPSTREAM_TIMEOUT"/)
})

test('a node that writes garbage: 502 protocol error', async (t) => {
  const garbage = net.createServer((s) => { s.on('error', () => {}); s.on('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')) })
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve))
  const port = (garbage.address() as AddressInfo).port
  const proxy = await startProxy({ upstreams: { '*': [`http://127.0.0.1:${port}`] } })
  t.after(() => Promise.all([proxy.close(), new Promise((resolve) => garbage.close(resolve))]))
  const r = await send(`${proxy.url}/`)
  assert.equal(r.status, 502)
  assert.match(String(r.headers['proxy-status']), /details="PORTICO_ERR_UPSTREAM_PROTOCOL"/)
})

test('a node that dies mid-body aborts the client response (never a fake complete one)', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-length': String(10 * MiB) })
    res.write(Buffer.alloc(MiB))
    setTimeout(() => req.socket.destroy(), 20)
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const outcome = await new Promise<string>((resolve) => {
    http.get({ port: proxy.port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
      assert.equal(res.statusCode, 200)
      res.on('data', () => {})
      res.on('end', () => resolve('complete'))
      res.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`))
      res.on('aborted', () => resolve('aborted'))
    }).on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`))
  })
  assert.notEqual(outcome, 'complete')
  await eventually('PORTICO_ERR_UPSTREAM_RESET is logged', () => proxy.logs.some((l) => l.error === 'PORTICO_ERR_UPSTREAM_RESET'), { every: 10 })
})

test('a client that goes away aborts the upstream request', async (t) => {
  let upstreamClosed!: () => void
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  const origin = await startOrigin((req, res) => {
    res.writeHead(200)
    res.write('start')
    // Keeps streaming until the proxy gives up the connection.
    const tick = setInterval(() => res.write('.'), 5)
    res.on('close', () => { clearInterval(tick); upstreamClosed() })
    void req
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const req = http.get({ port: proxy.port, host: '127.0.0.1', path: '/stream', agent: false })
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  await once(res, 'data')
  req.destroy()
  await closed
  await eventually('a 499 PORTICO_ERR_CLIENT_ABORTED is logged', () => proxy.logs.some((l) => l.status === 499 && l.error === 'PORTICO_ERR_CLIENT_ABORTED'), { every: 10 })
})

test('round robin across nodes', async (t) => {
  const names = ['a', 'b', 'c']
  const origins = await Promise.all(names.map((n) => startOrigin((_req, res) => res.end(n))))
  const proxy = await startProxy({ upstreams: { '*': origins.map((o) => o.url) } })
  t.after(() => Promise.all([proxy.close(), ...origins.map((o) => o.close())]))
  const seen: string[] = []
  for (let i = 0; i < 9; i++) seen.push((await send(`${proxy.url}/`)).body.toString())
  assert.deepEqual(seen, ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c'])
})

test('failover: a refused connection moves to the next node, bodies included; the dead node is then skipped', async (t) => {
  const dead = await closedPort()
  const live = await startOrigin((req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => { n += c.length })
    req.on('end', () => res.end(`live ${n}`))
  })
  const proxy = await startProxy({ upstreams: { '*': [`http://127.0.0.1:${dead}`, live.url] } })
  t.after(() => Promise.all([proxy.close(), live.close()]))
  for (let i = 0; i < 6; i++) {
    const r = await send(`${proxy.url}/`, { method: 'POST', body: 'payload', headers: { 'content-length': '7' } })
    assert.equal(r.status, 200)
    assert.equal(r.body.toString(), 'live 7')
  }
  assert.equal(live.requests.length, 6)
  const attempts = proxy.logs.filter((l) => l.status === 200)
  assert.equal(attempts.length, 6)
})

test('a body already sent is never replayed: a reset after the upload is a 502, not a retry', async (t) => {
  const resetter = await startOrigin((req) => {
    req.on('data', () => {})
    req.on('end', () => req.socket.destroy())
  })
  const other = await startOrigin((_req, res) => res.end('second'))
  const proxy = await startProxy({ upstreams: { '*': [resetter.url, other.url] } })
  t.after(() => Promise.all([proxy.close(), resetter.close(), other.close()]))
  const r = await send(`${proxy.url}/`, { method: 'POST', body: 'once only', headers: { 'content-length': '9' } })
  assert.equal(r.status, 502)
  assert.match(String(r.headers['proxy-status']), /connection_terminated/)
  assert.equal(resetter.requests.length, 1)
  assert.equal(other.requests.length, 0)
})

test('an idempotent request without a body is retried on another node after a reset', async (t) => {
  const resetter = await startOrigin((req) => req.socket.destroy())
  const other = await startOrigin((_req, res) => res.end('second'))
  const proxy = await startProxy({ upstreams: { '*': [resetter.url, other.url] } })
  t.after(() => Promise.all([proxy.close(), resetter.close(), other.close()]))
  const r = await send(`${proxy.url}/`)
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'second')
})

test('limits.maxRequestBody: 413 for declared and for streamed bodies over the limit', async (t) => {
  const origin = await startOrigin((req, res) => { req.resume(); req.on('end', () => res.end('ok')) })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, limits: { maxRequestBody: '1kb' } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const declared = await send(`${proxy.url}/`, { method: 'POST', body: Buffer.alloc(2048), headers: { 'content-length': '2048' } })
  assert.equal(declared.status, 413)
  assert.equal(origin.requests.length, 0)
  const small = await send(`${proxy.url}/`, { method: 'POST', body: Buffer.alloc(100) })
  assert.equal(small.status, 200)
  const streamed = await send(`${proxy.url}/`, { method: 'POST', body: Buffer.alloc(64 * 1024) })
  assert.equal(streamed.status, 413)
})
