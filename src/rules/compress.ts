/**
 * Response compression (docs/rules.md#compression): the negotiation on Accept-Encoding (RFC 9110 §12.5.3), the
 * decision whether a response may be compressed at all, the head of a compressed response, and the streaming
 * `Encoder` between the node's body and the client's response, with backpressure both ways (memory stays flat
 * however long the body).
 *
 * Levels are those of on-the-fly compression, where CPU per response matters more than the last percent of ratio:
 * gzip/deflate 5 (nginx users commonly pick 4–6; the ratio gained above 6 is small for much more CPU), brotli
 * quality 4 (Caddy and Cloudflare's choice for dynamic content; 11 is for precompressed files), zstd level 3
 * (zstd's own default, Caddy's).
 */
import { createRequire } from 'node:module'
import type * as Zlib from 'node:zlib'
import { addVary, lowerAscii } from '../http/fields.js'

export type Encoding = 'zstd' | 'br' | 'gzip' | 'deflate'

type ZstdZlib = typeof Zlib & {
  createZstdCompress?: (options?: { params?: Record<number, number> }) => Zlib.Gzip
  constants: typeof Zlib.constants & { ZSTD_c_compressionLevel?: number }
}

/** ZSTD_e_flush: write out what is buffered, keep the frame open. */
const ZSTD_FLUSH = 1

let zlibModule: ZstdZlib | null = null

/** node:zlib, loaded on first use: a config that compresses nothing never loads it. */
function zlib (): ZstdZlib {
  zlibModule ??= createRequire(import.meta.url)('node:zlib') as ZstdZlib
  return zlibModule
}

/** Whether this Node has zstd (zlib.createZstdCompress: Node 22.15+ and 23.8+). */
export function zstdAvailable (): boolean {
  return typeof zlib().createZstdCompress === 'function'
}

export interface CompressSpec {
  /** The server's order of preference (ties in the client's q-values go to the first); zstd only when available. */
  encodings: Encoding[]
  /** Bodies with a known Content-Length below this are not compressed. */
  minSize: number
  /** Media types compressed: "text/html", or "text/*", or "application/*+json" patterns. */
  types: string[]
}

/** One member of Accept-Encoding: a coding and its weight. */
interface Member { coding: string, q: number }

/** RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ). */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

/** The members of Accept-Encoding; a member with an invalid weight is left out. */
function members (value: string): Member[] {
  const out: Member[] = []
  for (const part of value.split(',')) {
    const [name, ...params] = part.split(';')
    const coding = name.trim().toLowerCase()
    if (coding === '') continue
    let q = 1
    let valid = true
    for (const p of params) {
      const eq = p.indexOf('=')
      if (eq === -1 || p.slice(0, eq).trim().toLowerCase() !== 'q') continue
      const v = p.slice(eq + 1).trim()
      if (!QVALUE.test(v)) valid = false
      else q = Number(v)
    }
    if (valid) out.push({ coding: coding === 'x-gzip' ? 'gzip' : coding, q })
  }
  return out
}

/**
 * The coding to answer with for `acceptEncoding`, or null for identity. An absent or empty field asks for none;
 * q=0 refuses a coding; `*` gives its weight to codings not named; the highest weight wins, ties by server order.
 */
export function negotiate (acceptEncoding: string | string[] | undefined, spec: CompressSpec): Encoding | null {
  if (acceptEncoding === undefined) return null
  const value = Array.isArray(acceptEncoding) ? acceptEncoding.join(',') : acceptEncoding
  if (value.trim() === '') return null
  const list = members(value)
  let star: number | null = null
  const named = new Map<string, number>()
  // A coding named twice: a refusal (q=0) anywhere wins, else the higher weight.
  const weigh = (prior: number | undefined, q: number): number => prior === 0 || q === 0 ? 0 : Math.max(prior ?? 0, q)
  for (const m of list) {
    if (m.coding === '*') star = weigh(star ?? undefined, m.q)
    else named.set(m.coding, weigh(named.get(m.coding), m.q))
  }
  let best: Encoding | null = null
  let bestQ = 0
  for (const e of spec.encodings) {
    if (e === 'zstd' && !zstdAvailable()) continue
    const q = named.get(e) ?? star ?? 0
    if (q > bestQ) {
      best = e
      bestQ = q
    }
  }
  return best
}

/** Whether a media type (without parameters, lower-case) matches one of `types`. */
function typeMatches (type: string, types: readonly string[]): boolean {
  for (const t of types) {
    const p = t.toLowerCase()
    if (p === type) return true
    const star = p.indexOf('*')
    if (star === -1) continue
    // "text/*", "application/*+json": the star stands for one or more characters without "/".
    const head = p.slice(0, star)
    const tail = p.slice(star + 1)
    if (type.length > head.length + tail.length && type.startsWith(head) && type.endsWith(tail) && !type.slice(head.length, type.length - tail.length).includes('/')) return true
  }
  return false
}

/**
 * Whether a response may be compressed: a final status that has a body and is not partial, no Content-Encoding
 * already (identity aside), no `no-transform` (RFC 9110 §7.7), no Content-Range, a media type in `types`, and no
 * Content-Length below `minSize`.
 */
export function compressible (status: number, headers: readonly string[], spec: CompressSpec): boolean {
  if (status < 200 || status === 204 || status === 206 || status === 304) return false
  let type: string | null = null
  for (let i = 0; i < headers.length; i += 2) {
    const name = lowerAscii(headers[i])
    const value = headers[i + 1]
    if (name === 'content-encoding') {
      if (value.trim().toLowerCase() !== 'identity' && value.trim() !== '') return false
    } else if (name === 'cache-control') {
      if (/(?:^|,)\s*no-transform\s*(?:,|$)/i.test(value)) return false
    } else if (name === 'content-range') {
      return false
    } else if (name === 'content-length') {
      const n = Number(value)
      if (Number.isFinite(n) && n < spec.minSize) return false
    } else if (name === 'content-type') {
      type = value.split(';')[0].trim().toLowerCase()
    }
  }
  return type !== null && typeMatches(type, spec.types)
}

/**
 * Integrity fields computed over the bytes or the representation the node sent (RFC 9530 Content-Digest and
 * Repr-Digest, whose representation includes the content coding; RFC 3230 Digest; RFC 1864 Content-MD5): wrong once
 * the body is compressed, and a client that checks them would reject the answer.
 */
const DIGESTS: ReadonlySet<string> = new Set(['content-digest', 'repr-digest', 'digest', 'content-md5'])

/**
 * The head of a compressed response, in place: Content-Encoding set, Content-Length and Accept-Ranges gone (the body
 * streams and its ranges would be of other bytes), digests of the uncompressed bytes gone, Vary names
 * Accept-Encoding, a strong ETag made weak (the bytes differ; RFC 9110 §8.8.1).
 */
export function compressHeaders (headers: string[], encoding: Encoding): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = lowerAscii(headers[i])
    if (name === 'content-length' || name === 'accept-ranges' || name === 'content-encoding' || DIGESTS.has(name)) headers.splice(i, 2)
    else if (name === 'etag' && headers[i + 1].startsWith('"')) headers[i + 1] = `W/${headers[i + 1]}`
  }
  headers.push('content-encoding', encoding)
  addVary(headers, 'Accept-Encoding')
}

/** Where an Encoder writes: the client's response. */
export interface EncoderSink {
  write: (chunk: Buffer) => boolean
  end: (last?: Buffer) => void
  once: (event: 'drain', fn: () => void) => unknown
  destroy: (err?: Error) => unknown
}

/** Bodies of a known length up to this are compressed in one call when complete: no stream, no thread-pool hop. */
export const ONE_SHOT_MAX = 64 * 1024

type Options = Zlib.ZlibOptions & Zlib.BrotliOptions & { params?: Record<number, number> }

/**
 * The options for `encoding`, sized to the body when its length is known: as nginx does, a small body gets a
 * smaller window and hash memory (the same output, a fraction of the allocation), and brotli a size hint.
 */
function optionsFor (encoding: Encoding, size: number | undefined): Options {
  switch (encoding) {
    case 'gzip':
    case 'deflate': {
      let windowBits = 15
      let memLevel = 8
      if (size !== undefined) {
        // zlib needs the window to cover the body plus its 262-byte lookahead.
        while (windowBits > 9 && size < (1 << (windowBits - 1)) - 262) {
          windowBits--
          memLevel--
        }
      }
      return { level: 5, windowBits, memLevel: Math.max(1, memLevel) }
    }
    case 'br': {
      const params: Record<number, number> = { [zlib().constants.BROTLI_PARAM_QUALITY]: 4 }
      if (size !== undefined) {
        params[zlib().constants.BROTLI_PARAM_SIZE_HINT] = size
        params[zlib().constants.BROTLI_PARAM_LGWIN] = Math.min(22, Math.max(10, Math.ceil(Math.log2(size + 1))))
      }
      return { params }
    }
    case 'zstd': {
      const level = zlib().constants.ZSTD_c_compressionLevel
      return level === undefined ? {} : { params: { [level]: 3 } }
    }
  }
}

function createStream (encoding: Encoding, options: Options): Zlib.Gzip | Zlib.BrotliCompress | Zlib.Deflate {
  switch (encoding) {
    case 'gzip': return zlib().createGzip(options)
    case 'deflate': return zlib().createDeflate(options)
    case 'br': return zlib().createBrotliCompress(options)
    case 'zstd': return zlib().createZstdCompress!(options)
  }
}

function compressSync (encoding: Encoding, body: Buffer, options: Options): Buffer {
  switch (encoding) {
    case 'gzip': return zlib().gzipSync(body, options)
    case 'deflate': return zlib().deflateSync(body, options)
    case 'br': return zlib().brotliCompressSync(body, options)
    case 'zstd': return (zlib() as unknown as { zstdCompressSync: (b: Buffer, o: Options) => Buffer }).zstdCompressSync(body, options)
  }
}

/**
 * A streaming encoder into `sink`. `write` returns false when the caller must wait (`onDrain`); the encoder itself
 * stops reading its output while the sink is full, so neither side buffers without bound. A body of a known length
 * up to ONE_SHOT_MAX is gathered and compressed in one synchronous call at its end instead: for small responses,
 * setting up a stream costs more than compressing them.
 */
export class Encoder {
  readonly #encoding: Encoding
  readonly #sink: EncoderSink
  readonly #options: Options
  /** The stream, or null in one-shot mode (then `#pieces` gathers the body). */
  readonly #stream: Zlib.Gzip | Zlib.BrotliCompress | Zlib.Deflate | null
  readonly #pieces: Buffer[] = []
  /** The flush kind after each write (event streams), or null. */
  readonly #flush: number | null
  #bytesOut = 0
  #destroyed = false

  constructor (encoding: Encoding, sink: EncoderSink, options: { sizeHint?: number, flushEachWrite?: boolean } = {}) {
    this.#encoding = encoding
    this.#sink = sink
    this.#options = optionsFor(encoding, options.sizeHint)
    this.#flush = options.flushEachWrite !== true
      ? null
      : encoding === 'br' ? zlib().constants.BROTLI_OPERATION_FLUSH : encoding === 'zstd' ? ZSTD_FLUSH : zlib().constants.Z_SYNC_FLUSH
    if (Encoder.isOneShot(options.sizeHint, this.#flush !== null)) {
      this.#stream = null
      return
    }
    const stream = this.#stream = createStream(encoding, this.#options)
    stream.on('data', (chunk: Buffer) => {
      this.#bytesOut += chunk.length
      if (!sink.write(chunk)) {
        stream.pause()
        sink.once('drain', () => { if (!this.#destroyed) stream.resume() })
      }
    })
    stream.once('end', () => { if (!this.#destroyed) sink.end() })
    // A compression failure cannot be answered any more: the client's response is cut short, never completed falsely.
    stream.on('error', (err) => {
      this.destroy()
      sink.destroy(err)
    })
  }

  /** Whether a body of `sizeHint` bytes is compressed in one call at its end (its sink then gets only `end(out)`). */
  static isOneShot (sizeHint: number | undefined, flushEachWrite: boolean): boolean {
    return sizeHint !== undefined && sizeHint <= ONE_SHOT_MAX && !flushEachWrite
  }

  /** Bytes written into the sink so far. */
  get bytesOut (): number {
    return this.#bytesOut
  }

  /** Writes a piece of the body; false: wait for `onDrain` before the next. */
  write (chunk: Buffer): boolean {
    if (this.#destroyed) return true
    const stream = this.#stream
    if (stream === null) {
      this.#pieces.push(chunk)
      return true
    }
    const ok = stream.write(chunk)
    if (this.#flush !== null) stream.flush(this.#flush)
    return ok
  }

  /** Runs `fn` once the encoder takes more input. */
  onDrain (fn: () => void): void {
    if (this.#stream === null) fn()
    else this.#stream.once('drain', fn)
  }

  /** Flushes what is left and ends the sink. */
  end (): void {
    if (this.#destroyed) return
    if (this.#stream !== null) {
      this.#stream.end()
      return
    }
    let out: Buffer
    try {
      out = compressSync(this.#encoding, this.#pieces.length === 1 ? this.#pieces[0] : Buffer.concat(this.#pieces), this.#options)
    } catch (err) {
      this.#destroyed = true
      this.#sink.destroy(err as Error)
      return
    }
    this.#pieces.length = 0
    this.#bytesOut = out.length
    this.#sink.end(out)
  }

  /** Stops: nothing more reaches the sink. */
  destroy (): void {
    if (this.#destroyed) return
    this.#destroyed = true
    this.#pieces.length = 0
    this.#stream?.destroy()
  }
}
