/**
 * Compression on the way out (docs/rules.md#compression), through a real proxy from a real node: bodies decompress
 * byte-identical for each coding at 1 KiB, 1 MiB and a 100 MiB stream (with the process's memory flat), the
 * negotiation on Accept-Encoding with q-values, what is never compressed, Vary and ETag, curl --compressed, and the
 * cache storing once and compressing per client.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import zlib from 'node:zlib'
import { startOrigin, startProxy, send, type Origin, type RunningProxy } from '../helpers/servers.js'
import { zstdAvailable } from '../../src/rules/compress.js'

const KIB = Buffer.from('<p>Portico compresses text on the way out; this line repeats with a counter: 0000</p>\n'.repeat(13)).subarray(0, 1024)

/** A compressible, not trivially repetitive text: lines with a running counter and a hash fragment. */
function textChunk (i: number, size = 64 * 1024): Buffer {
  const lines: string[] = []
  let n = 0
  while (n < size) {
    const line = `${i}:${n} ${createHash('sha1').update(`${i}/${n}`).digest('hex').slice(0, 12)} lorem ipsum dolor sit amet\n`
    lines.push(line)
    n += line.length
  }
  return Buffer.from(lines.join('')).subarray(0, size)
}
const MIB = Buffer.concat(Array.from({ length: 16 }, (_, i) => textChunk(i)))
const STREAM_CHUNKS = 1600 // × 64 KiB = 100 MiB

function sha (b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

/** SHA-256 of the 100 MiB stream, computed the same way the origin generates it. */
function streamSha (): string {
  const h = createHash('sha256')
  for (let i = 0; i < STREAM_CHUNKS; i++) h.update(textChunk(i))
  return h.digest('hex')
}

async function origin (): Promise<Origin> {
  return await startOrigin((req, res) => {
    switch (req.url) {
      case '/1k': res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': KIB.length, etag: '"v1"' }); res.end(KIB); break
      case '/1m': res.writeHead(200, { 'content-type': 'application/json', 'content-length': MIB.length }); res.end(MIB); break
      case '/stream': {
        res.writeHead(200, { 'content-type': 'text/plain' })
        let i = 0
        const write = (): void => {
          while (i < STREAM_CHUNKS) {
            if (!res.write(textChunk(i++))) {
              res.once('drain', write)
              return
            }
          }
          res.end()
        }
        write()
        break
      }
      case '/tiny': res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 }); res.end('small'); break
      case '/image': res.writeHead(200, { 'content-type': 'image/png', 'content-length': KIB.length }); res.end(KIB); break
      case '/encoded': res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }); res.end(zlib.gzipSync(KIB)); break
      case '/no-transform': res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-transform', 'content-length': KIB.length }); res.end(KIB); break
      case '/partial': res.writeHead(206, { 'content-type': 'text/plain', 'content-range': `bytes 0-1023/${MIB.length}`, 'content-length': 1024 }); res.end(MIB.subarray(0, 1024)); break
      case '/cached': res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', 'content-length': MIB.length }); res.end(MIB); break
      default: res.writeHead(404); res.end()
    }
  })
}

const ENCODINGS = ['gzip', 'br', 'deflate', ...(zstdAvailable() ? ['zstd'] : [])]

function decoder (encoding: string | undefined): NodeJS.ReadWriteStream | null {
  switch (encoding) {
    case 'gzip': return zlib.createGunzip()
    case 'br': return zlib.createBrotliDecompress()
    case 'deflate': return zlib.createInflate()
    case 'zstd': return (zlib as unknown as { createZstdDecompress: () => NodeJS.ReadWriteStream }).createZstdDecompress()
    default: return null
  }
}

/** GETs `path` with Accept-Encoding, decodes as the answer says, hashes the decoded body as it streams. */
async function fetchDecoded (p: RunningProxy, path: string, acceptEncoding: string, onChunk?: () => void): Promise<{ status: number, headers: http.IncomingHttpHeaders, sha: string, bytes: number, wire: number }> {
  return await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: p.port, path, headers: { host: 'c.test', 'accept-encoding': acceptEncoding }, agent: false }, (res) => {
      const h = createHash('sha256')
      let bytes = 0
      let wire = 0
      res.on('data', (c: Buffer) => { wire += c.length })
      const sink = new Writable({
        write (chunk: Buffer, _e, cb) {
          bytes += chunk.length
          h.update(chunk)
          onChunk?.()
          cb()
        }
      })
      const d = decoder(res.headers['content-encoding'])
      const done = d === null ? pipeline(res, sink) : pipeline(res, d, sink)
      done.then(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, sha: h.digest('hex'), bytes, wire }), reject)
    }).on('error', reject)
  })
}

async function setup (t: { after: (fn: () => Promise<void>) => void }, compress: unknown = { encodings: ['zstd', 'br', 'gzip', 'deflate'] }, cache = false): Promise<RunningProxy> {
  const o = await origin()
  t.after(() => o.close())
  const p = await startProxy({ cache, routes: [{ host: 'c.test', upstream: [o.url], compress: compress as boolean, cache }] })
  t.after(() => p.close())
  return p
}

test('each coding decompresses byte-identical at 1 KiB and 1 MiB, with Vary and a weak ETag; a small body gets its compressed length, a large one streams', async (t) => {
  const p = await setup(t)
  for (const enc of ENCODINGS) {
    const small = await fetchDecoded(p, '/1k', enc)
    assert.equal(small.headers['content-encoding'], enc)
    assert.equal(small.sha, sha(KIB), `${enc} 1 KiB`)
    assert.equal(small.headers['content-length'], String(small.wire), 'compressed in one call: the length is known')
    assert.equal(small.headers.vary, 'Accept-Encoding')
    assert.equal(small.headers.etag, 'W/"v1"')
    const big = await fetchDecoded(p, '/1m', enc)
    assert.equal(big.headers['content-encoding'], enc)
    assert.equal(big.sha, sha(MIB), `${enc} 1 MiB`)
    assert.equal(big.headers['content-length'], undefined, 'streamed')
    assert.ok(big.wire < MIB.length / 2, `${enc} compresses: ${big.wire} bytes on the wire`)
    t.diagnostic(`${enc}: 1 MiB → ${big.wire} bytes`)
  }
})

test('a 100 MiB stream decompresses byte-identical for each coding, memory flat', async (t) => {
  const p = await setup(t)
  const want = streamSha()
  for (const enc of ENCODINGS) {
    const before = process.memoryUsage().rss
    let peak = before
    let n = 0
    const got = await fetchDecoded(p, '/stream', enc, () => {
      if (++n % 64 === 0) peak = Math.max(peak, process.memoryUsage().rss)
    })
    assert.equal(got.headers['content-encoding'], enc)
    assert.equal(got.bytes, STREAM_CHUNKS * 64 * 1024)
    assert.equal(got.sha, want, `${enc} 100 MiB`)
    const growth = (peak - before) / 1024 / 1024
    t.diagnostic(`${enc}: 100 MiB → ${(got.wire / 1024 / 1024).toFixed(1)} MiB on the wire, RSS growth ${growth.toFixed(1)} MiB`)
    assert.ok(growth < 96, `memory stays flat while 100 MiB stream through (${growth.toFixed(1)} MiB)`)
  }
})

test('negotiation: q-values, server order on ties, "*", q=0, identity, invalid q-values ignored', async (t) => {
  const p = await setup(t, { encodings: ['br', 'gzip'] })
  const enc = async (ae: string): Promise<string | undefined> => (await fetchDecoded(p, '/1k', ae)).headers['content-encoding']
  assert.equal(await enc('gzip, br'), 'br', 'a tie goes to the server\'s order')
  assert.equal(await enc('gzip;q=1, br;q=0.5'), 'gzip')
  assert.equal(await enc('br;q=0, *'), 'gzip')
  assert.equal(await enc('*;q=0.1, gzip;q=0'), 'br')
  assert.equal(await enc('identity'), undefined)
  assert.equal(await enc('gzip;q=0, br;q=0'), undefined)
  assert.equal(await enc('br;q=abc, gzip;q=0.3'), 'gzip', 'the invalid member is ignored')
  assert.equal(await enc('br;q=2, gzip;q=1.0001'), undefined, 'out of range: both ignored')
  assert.equal(await enc('GZIP'), 'gzip')
  assert.equal(await enc('x-gzip'), 'gzip')
  assert.equal(await enc(''), undefined)
  const browser = await fetchDecoded(p, '/1k', 'gzip, deflate, br, zstd')
  assert.equal(browser.headers['content-encoding'], 'br')
  assert.equal(browser.sha, sha(KIB))
  const plain = await send(p.url, { headers: { host: 'c.test' }, path: '/1k' })
  assert.equal(plain.headers['content-encoding'], undefined)
  assert.ok(plain.body.equals(KIB))
  assert.equal(plain.headers.vary, 'Accept-Encoding', 'an identity answer that another client would get compressed varies too')
  assert.equal(plain.headers.etag, '"v1"')
})

test('never compressed: already encoded, no-transform, 206, tiny, other media types, HEAD', async (t) => {
  const p = await setup(t)
  const get = async (path: string, method = 'GET'): Promise<{ enc: string | undefined, length: string | undefined }> => {
    const r = await send(p.url, { method, headers: { host: 'c.test', 'accept-encoding': 'br, gzip' }, path })
    return { enc: r.headers['content-encoding'], length: r.headers['content-length'] }
  }
  assert.deepEqual(await get('/encoded'), { enc: 'gzip', length: undefined }, 'the node\'s own coding passes as it is')
  assert.equal((await get('/no-transform')).enc, undefined)
  assert.equal((await get('/partial')).enc, undefined)
  assert.equal((await get('/tiny')).enc, undefined)
  assert.equal((await get('/image')).enc, undefined)
  const head = await send(p.url, { method: 'HEAD', headers: { host: 'c.test', 'accept-encoding': 'gzip' }, path: '/1k' })
  assert.equal(head.headers['content-encoding'], 'gzip', 'HEAD has the head GET would have')
  assert.equal(head.body.length, 0)
})

test('curl --compressed gets the body the node sent', { skip: existsSync('/usr/bin/curl') ? false : 'curl is not installed' }, async (t) => {
  const p = await setup(t)
  const body = await new Promise<Buffer>((resolve, reject) => {
    execFile('/usr/bin/curl', ['-s', '--compressed', '-H', 'Host: c.test', `${p.url}/1m`], { encoding: 'buffer', maxBuffer: 8 * 1024 * 1024 }, (err, stdout) => err === null ? resolve(stdout) : reject(err))
  })
  assert.equal(sha(body), sha(MIB))
})

test('with the cache: stored once as the node sent it, compressed per client', async (t) => {
  const p = await setup(t, { encodings: ['br', 'gzip'] }, true)
  const first = await fetchDecoded(p, '/cached', 'gzip')
  assert.equal(first.headers['content-encoding'], 'gzip')
  const second = await fetchDecoded(p, '/cached', 'br')
  assert.equal(second.headers['content-encoding'], 'br')
  assert.match(String(second.headers['cache-status']), /hit/)
  assert.equal(second.sha, sha(MIB))
  const third = await send(p.url, { headers: { host: 'c.test' }, path: '/cached' })
  assert.equal(third.headers['content-encoding'], undefined)
  assert.ok(third.body.equals(MIB))
  assert.match(String(third.headers['cache-status']), /hit/)
})

test('over HTTP/2 (h2c) a compressed body streams and decodes the same', async (t) => {
  const { createProxy } = await import('../../src/index.js')
  const o = await origin()
  t.after(() => o.close())
  const proxy = createProxy({ listen: [{ host: '127.0.0.1', port: 0, http2: true }], routes: [{ host: 'c.test', upstream: [o.url], compress: true }], log: { access: false } })
  const [addr] = await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  const session = http2.connect(`http://127.0.0.1:${addr.port}`)
  t.after(() => session.close())
  for (const enc of ['gzip', 'br']) {
    const { headers, body } = await new Promise<{ headers: http2.IncomingHttpHeaders, body: Buffer }>((resolve, reject) => {
      const stream = session.request({ ':path': '/1m', ':authority': 'c.test', 'accept-encoding': enc })
      let headers: http2.IncomingHttpHeaders = {}
      const chunks: Buffer[] = []
      stream.on('response', (h) => { headers = h })
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => resolve({ headers, body: Buffer.concat(chunks) }))
      stream.on('error', reject)
    })
    assert.equal(headers['content-encoding'], enc)
    const decoded = enc === 'gzip' ? zlib.gunzipSync(body) : zlib.brotliDecompressSync(body)
    assert.equal(sha(decoded), sha(MIB))
  }
})
