/**
 * The compression engine without sockets: Accept-Encoding negotiation (RFC 9110 §12.5.3), what may be compressed,
 * the head of a compressed response, and the Encoder's backpressure into a sink that is slower than it. Through a
 * real proxy: test/integration/rules-compress.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import zlib from 'node:zlib'
import fc from 'fast-check'
import { Encoder, zstdAvailable, compressHeaders, compressible, negotiate, type CompressSpec, type Encoding } from '../../src/rules/compress.js'

const SPEC: CompressSpec = { encodings: ['zstd', 'br', 'gzip'], minSize: 1024, types: ['text/*', 'application/json', 'application/*+json', 'image/svg+xml'] }
const Z: Encoding | 'br' = zstdAvailable() ? 'zstd' : 'br'

test('negotiate: absent, empty, weights, ties, "*", q=0, identity, aliases, invalid members', () => {
  const cases: [string | undefined, Encoding | null][] = [
    [undefined, null],
    ['', null],
    ['   ', null],
    ['gzip', 'gzip'],
    ['gzip, br', 'br'],
    ['gzip, br, zstd', Z],
    ['br;q=1.0, gzip;q=0.8', 'br'],
    ['br;q=0.5, gzip;q=0.8', 'gzip'],
    ['*', Z],
    ['*;q=0.5, gzip;q=0', Z],
    ['*;q=0.5, br;q=0, zstd;q=0', 'gzip'],
    ['identity', null],
    ['identity, *;q=0', null],
    ['gzip;q=0', null],
    ['GZip;Q=1', 'gzip'],
    ['x-gzip', 'gzip'],
    [' gzip ; q=0.2 ,  br ; q=0.1 ', 'gzip'],
    ['br;q=abc, gzip;q=0.1', 'gzip'],
    ['br;q=1.5, gzip', 'gzip'],
    ['br;q=0.1234, gzip;q=0.001', 'gzip'],
    ['br;q=, gzip;q=1.000', 'gzip'],
    ['compress, deflate', null],
    [',,,', null]
  ]
  for (const [ae, want] of cases) assert.equal(negotiate(ae, SPEC), want, String(ae))
  assert.equal(negotiate('deflate, gzip;q=0.5', { ...SPEC, encodings: ['gzip', 'deflate'] }), 'deflate')
  assert.equal(negotiate(['gzip;q=0.1', 'br'], SPEC), 'br', 'repeated fields are one list')
})

test('negotiate never throws and only answers with an offered coding the client accepts', () => {
  const token = fc.constantFrom('gzip', 'br', 'zstd', 'deflate', 'identity', '*', 'x-gzip', 'compress', 'GZIP', '')
  const q = fc.oneof(fc.constant(''), fc.constantFrom(';q=0', ';q=1', ';q=0.5', ';q=1.0', ';q=abc', ';q=2', ';q=0.0001', ';Q=0.3'), fc.string({ maxLength: 6 }).map((s) => `;${s}`))
  const header = fc.array(fc.tuple(token, q).map(([t, w]) => `${t}${w}`), { maxLength: 6 }).map((l) => l.join(', '))
  fc.assert(fc.property(fc.oneof(header, fc.string({ maxLength: 40 })), (ae) => {
    const got = negotiate(ae, SPEC)
    if (got === null) return
    assert.ok(SPEC.encodings.includes(got))
    assert.ok(got !== 'zstd' || zstdAvailable())
    assert.ok(!new RegExp(`(^|,)\\s*${got}\\s*;\\s*q=0(\\.0*)?\\s*(,|$)`, 'i').test(ae), `${got} was refused with q=0 in ${ae}`)
  }), { numRuns: 3000 })
})

test('compressible: each refusal and the positive cases', () => {
  const ok = (h: string[], status = 200): boolean => compressible(status, h, SPEC)
  assert.equal(ok(['Content-Type', 'text/html; charset=utf-8']), true)
  assert.equal(ok(['content-type', 'application/problem+json', 'content-length', '5000']), true)
  assert.equal(ok(['content-type', 'IMAGE/SVG+XML']), true)
  assert.equal(ok(['content-type', 'text/plain', 'content-encoding', 'identity']), true)
  assert.equal(ok(['content-type', 'image/png']), false)
  assert.equal(ok(['content-type', 'application/json+x']), false)
  assert.equal(ok(['content-type', 'application/a/b+json']), false, 'the star never spans a "/"')
  assert.equal(ok([]), false, 'no media type')
  assert.equal(ok(['content-type', 'text/plain', 'content-length', '1023']), false)
  assert.equal(ok(['content-type', 'text/plain', 'content-encoding', 'gzip']), false)
  assert.equal(ok(['content-type', 'text/plain', 'cache-control', 'public, No-Transform']), false)
  assert.equal(ok(['content-type', 'text/plain', 'cache-control', 'no-transformx']), true)
  assert.equal(ok(['content-type', 'text/plain', 'content-range', 'bytes 0-1/2']), false)
  for (const status of [101, 204, 206, 304]) assert.equal(ok(['content-type', 'text/plain'], status), false, String(status))
  assert.equal(ok(['content-type', 'text/plain'], 404), true, 'error pages compress too')
})

test('compressHeaders: coding set, length and ranges gone, Vary merged, strong ETag made weak', () => {
  const h = ['Content-Type', 'text/html', 'Content-Length', '5000', 'Accept-Ranges', 'bytes', 'ETag', '"abc"', 'Vary', 'Cookie']
  compressHeaders(h, 'br')
  assert.deepEqual(h, ['Content-Type', 'text/html', 'ETag', 'W/"abc"', 'Vary', 'Cookie, Accept-Encoding', 'content-encoding', 'br'])
  const weak = ['etag', 'W/"x"', 'vary', 'accept-encoding']
  compressHeaders(weak, 'gzip')
  assert.deepEqual(weak, ['etag', 'W/"x"', 'vary', 'accept-encoding', 'content-encoding', 'gzip'])
  const digests = ['Content-Digest', 'sha-256=:a:', 'Repr-Digest', 'sha-256=:b:', 'Digest', 'SHA-256=c', 'Content-MD5', 'd', 'Want-Repr-Digest', 'sha-256=1']
  compressHeaders(digests, 'gzip')
  assert.deepEqual(digests, ['Want-Repr-Digest', 'sha-256=1', 'content-encoding', 'gzip', 'vary', 'Accept-Encoding'], 'digests of the uncompressed bytes are dropped')
})

/** A sink that takes `capacity` bytes, then says "full" until the test drains it. */
class SlowSink extends EventEmitter {
  readonly chunks: Buffer[] = []
  buffered = 0
  writesWhileFull = 0
  full = false
  ended = false
  constructor (readonly capacity: number) { super() }
  write (chunk: Buffer): boolean {
    if (this.full) this.writesWhileFull++
    this.chunks.push(chunk)
    this.buffered += chunk.length
    this.full = this.buffered >= this.capacity
    return !this.full
  }

  end (last?: Buffer): void {
    if (last !== undefined) this.chunks.push(last)
    this.ended = true
  }
  destroy (): void {}
  drain (): void {
    this.buffered = 0
    this.full = false
    this.emit('drain')
  }
}

function decode (encoding: Encoding, data: Buffer): Buffer {
  switch (encoding) {
    case 'gzip': return zlib.gunzipSync(data)
    case 'deflate': return zlib.inflateSync(data)
    case 'br': return zlib.brotliDecompressSync(data)
    case 'zstd': return (zlib as unknown as { zstdDecompressSync: (b: Buffer) => Buffer }).zstdDecompressSync(data)
  }
}

test('Encoder: waits for a full sink and tells its writer to wait; output decodes to the input', async () => {
  const encodings: Encoding[] = ['gzip', 'deflate', 'br', ...(zstdAvailable() ? ['zstd' as const] : [])]
  // Hash output does not compress: the output is as large as the input (1 MiB, far over any stream buffer: 16 KiB
  // on Node 20, 64 KiB on Node 22+) and keeps hitting the sink's limit. Some text in between does compress.
  const input = Buffer.concat(Array.from({ length: 8192 }, (_, i) => createHash('sha512').update(String(i)).digest()).flatMap((b, i) => i % 64 === 0 ? [b, Buffer.from('text that repeats '.repeat(40))] : [b]))
  for (const enc of encodings) {
    const sink = new SlowSink(2048)
    const encoder = new Encoder(enc, sink)
    let paused = 0
    for (let off = 0; off < input.length; off += 4096) {
      if (!encoder.write(input.subarray(off, off + 4096))) {
        paused++
        const resumed = new Promise<void>((resolve) => encoder.onDrain(resolve))
        // The writer waits; whoever reads the sink lets it go on.
        while (!(await Promise.race([resumed.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]))) sink.drain()
      }
    }
    encoder.end()
    while (!sink.ended) {
      sink.drain()
      await new Promise((resolve) => setImmediate(resolve))
    }
    assert.equal(sink.writesWhileFull, 0, `${enc}: nothing written into a full sink`)
    assert.ok(decode(enc, Buffer.concat(sink.chunks)).equals(input), `${enc} round trip`)
    assert.equal(encoder.bytesOut, Buffer.concat(sink.chunks).length)
    assert.ok(paused > 0, `${enc}: the writer was told to wait at least once (${paused})`)
  }
})

test('Encoder: a small body of known length is compressed in one call, with a window sized to it', () => {
  for (const enc of ['gzip', 'deflate', 'br', ...(zstdAvailable() ? ['zstd' as const] : [])] as Encoding[]) {
    const body = Buffer.from('small body that repeats, small body that repeats, small body that repeats\n'.repeat(14))
    const sink = new SlowSink(1 << 20)
    const encoder = new Encoder(enc, sink, { sizeHint: body.length })
    encoder.write(body.subarray(0, 100))
    encoder.write(body.subarray(100))
    assert.equal(sink.chunks.length, 0, 'nothing written before the end')
    encoder.end()
    assert.equal(sink.ended, true, 'ended synchronously')
    assert.ok(decode(enc, Buffer.concat(sink.chunks)).equals(body), `${enc} round trip`)
    assert.ok(encoder.bytesOut < body.length / 3)
  }
})
