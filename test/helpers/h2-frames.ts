/**
 * A minimal HTTP/2 client written frame by frame (RFC 9113), for tests that must send what no well-behaved client
 * sends: forbidden header fields, frames in a hostile order, floods. Over a plain TCP socket (h2c, prior knowledge).
 *
 * - Frames: the client preface, SETTINGS (+ ACK), HEADERS with END_HEADERS / END_STREAM, CONTINUATION, DATA,
 *   RST_STREAM, WINDOW_UPDATE, PING ACK, GOAWAY; `FrameReader` splits received bytes into frames.
 * - HPACK (RFC 7541) encoding: every field as "literal header field without indexing, new name" (0x00 prefix,
 *   7-bit-prefix string lengths, no Huffman), so any bytes at all can be sent as a name or a value.
 * - HPACK decoding: enough to read the server's responses. `H2Client` announces SETTINGS_HEADER_TABLE_SIZE 0, so the
 *   server never refers to a dynamic table: static-table indexes and literals are decoded; a Huffman-coded string
 *   is decoded when it holds digits only (a `:status` — RFC 7541 Appendix B codes for '0'..'9') and is otherwise
 *   returned as undefined (its length and presence are still known).
 *
 * Nothing here mocks a socket: `H2Client` talks to a real listener on 127.0.0.1, and every wait is bounded.
 */
import net from 'node:net'
import { eventually } from './poll.js'

/** RFC 9113 §3.4. */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

/** Frame types (RFC 9113 §6). */
export const T = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9
} as const

/** Frame flags. */
export const F = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20
} as const

/** Error codes (RFC 9113 §7). */
export const E = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd
} as const

/** SETTINGS parameters (RFC 9113 §6.5.2). */
export const S = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6
} as const

export interface Frame {
  type: number
  flags: number
  streamId: number
  payload: Buffer
}

// --- writing frames ----------------------------------------------------------------------------------------

/** One frame: the 9-byte header (RFC 9113 §4.1) and its payload. */
export function frame (type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head.writeUInt8(type, 3)
  head.writeUInt8(flags, 4)
  head.writeUInt32BE(streamId & 0x7fffffff, 5)
  return Buffer.concat([head, payload])
}

export function settings (entries: [number, number][] = []): Buffer {
  const payload = Buffer.alloc(entries.length * 6)
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6)
    payload.writeUInt32BE(value, i * 6 + 2)
  })
  return frame(T.SETTINGS, 0, 0, payload)
}

export function settingsAck (): Buffer {
  return frame(T.SETTINGS, F.ACK, 0)
}

/** A HEADERS frame carrying `block` (END_HEADERS unless `endHeaders: false`). */
export function headers (streamId: number, block: Buffer, options: { endStream?: boolean, endHeaders?: boolean } = {}): Buffer {
  const flags = (options.endStream === true ? F.END_STREAM : 0) | (options.endHeaders === false ? 0 : F.END_HEADERS)
  return frame(T.HEADERS, flags, streamId, block)
}

export function continuation (streamId: number, block: Buffer, endHeaders: boolean): Buffer {
  return frame(T.CONTINUATION, endHeaders ? F.END_HEADERS : 0, streamId, block)
}

export function data (streamId: number, payload: Buffer | string, endStream: boolean): Buffer {
  return frame(T.DATA, endStream ? F.END_STREAM : 0, streamId, typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload)
}

export function rstStream (streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4)
  payload.writeUInt32BE(code)
  return frame(T.RST_STREAM, 0, streamId, payload)
}

export function windowUpdate (streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4)
  payload.writeUInt32BE(increment & 0x7fffffff)
  return frame(T.WINDOW_UPDATE, 0, streamId, payload)
}

export function goaway (lastStreamId: number, code: number): Buffer {
  const payload = Buffer.alloc(8)
  payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0)
  payload.writeUInt32BE(code, 4)
  return frame(T.GOAWAY, 0, 0, payload)
}

// --- reading frames ----------------------------------------------------------------------------------------

/** Splits a byte stream into frames; `push` returns the frames completed by `chunk`. */
export class FrameReader {
  #buffered: Buffer = Buffer.alloc(0)

  push (chunk: Buffer): Frame[] {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk])
    const out: Frame[] = []
    while (this.#buffered.length >= 9) {
      const length = this.#buffered.readUIntBE(0, 3)
      if (this.#buffered.length < 9 + length) break
      out.push({
        type: this.#buffered.readUInt8(3),
        flags: this.#buffered.readUInt8(4),
        streamId: this.#buffered.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buffered.subarray(9, 9 + length)
      })
      this.#buffered = this.#buffered.subarray(9 + length)
    }
    return out
  }
}

export function parseGoaway (payload: Buffer): { lastStreamId: number, errorCode: number, debug: string } {
  return {
    lastStreamId: payload.readUInt32BE(0) & 0x7fffffff,
    errorCode: payload.readUInt32BE(4),
    debug: payload.subarray(8).toString('latin1')
  }
}

export function parseRstStream (payload: Buffer): number {
  return payload.readUInt32BE(0)
}

// --- HPACK ---------------------------------------------------------------------------------------------------

/** RFC 7541 §5.1: an integer with an N-bit prefix; `first` holds the bits above the prefix. */
export function encodeInteger (value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1
  if (value < max) return Buffer.from([first | value])
  const out = [first | max]
  let rest = value - max
  while (rest >= 128) {
    out.push((rest % 128) + 128)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
  return Buffer.from(out)
}

/** RFC 7541 §5.2: a string literal, never Huffman-coded (the H bit is 0), with its bytes as given (latin1). */
export function encodeString (s: string | Buffer): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'latin1') : s
  return Buffer.concat([encodeInteger(bytes.length, 7, 0x00), bytes])
}

/**
 * A header block: every field as a literal without indexing, new name (RFC 7541 §6.2.2). Names and values are
 * sent exactly as given, uppercase letters, CR, LF and NUL included.
 */
export function encodeHeaders (fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of fields) parts.push(Buffer.from([0x00]), encodeString(name), encodeString(value))
  return Buffer.concat(parts)
}

/** RFC 7541 Appendix A. Index 1 is STATIC[0]. */
const STATIC: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', '']
]

/** RFC 7541 Appendix B, the digits only: '0'–'2' are 5-bit codes 0–2, '3'–'9' 6-bit codes 0x19–0x1f. */
const HUFFMAN_DIGITS: ReadonlyMap<string, string> = new Map([
  ['00000', '0'], ['00001', '1'], ['00010', '2'], ['011001', '3'], ['011010', '4'], ['011011', '5'],
  ['011100', '6'], ['011101', '7'], ['011110', '8'], ['011111', '9']
])

/** A Huffman-coded string of digits, or undefined for anything else (padding: up to 7 one-bits, §5.2). */
function huffmanDigits (bytes: Buffer): string | undefined {
  let bits = ''
  for (const b of bytes) bits += b.toString(2).padStart(8, '0')
  let out = ''
  let code = ''
  for (const bit of bits) {
    code += bit
    const digit = HUFFMAN_DIGITS.get(code)
    if (digit !== undefined) {
      out += digit
      code = ''
    } else if (code.length >= 6) {
      // Not a digit code (or padding longer than a digit code): only all-ones padding may remain.
      if (!/^1+$/.test(code)) return undefined
    }
  }
  return /^1{0,7}$/.test(code) ? out : undefined
}

/** A decoded field; `value` (or `name`) is undefined when it was Huffman-coded with more than digits. */
export interface DecodedField {
  name: string | undefined
  value: string | undefined
}

/**
 * Decodes a header block sent to a client that announced SETTINGS_HEADER_TABLE_SIZE 0: a reference to the
 * dynamic table throws (the server would be breaking that setting).
 */
export function decodeHeaders (block: Buffer): DecodedField[] {
  const out: DecodedField[] = []
  let pos = 0
  const integer = (prefixBits: number): number => {
    const max = (1 << prefixBits) - 1
    let value = block[pos++] & max
    if (value < max) return value
    let shift = 0
    for (let n = 0; n < 5; n++) {
      const b = block[pos++]
      value += (b & 0x7f) * 2 ** shift
      shift += 7
      if ((b & 0x80) === 0) return value
    }
    throw new Error('HPACK integer too long')
  }
  const string = (): string | undefined => {
    const huffman = (block[pos] & 0x80) !== 0
    const length = integer(7)
    const bytes = block.subarray(pos, pos + length)
    pos += length
    return huffman ? huffmanDigits(bytes) : bytes.toString('latin1')
  }
  const indexed = (index: number): readonly [string, string] => {
    const entry = STATIC[index - 1]
    if (entry === undefined) throw new Error(`HPACK index ${index} is not in the static table`)
    return entry
  }
  while (pos < block.length) {
    const b = block[pos]
    if ((b & 0x80) !== 0) {
      const [name, value] = indexed(integer(7))
      out.push({ name, value })
    } else if ((b & 0xe0) === 0x20) {
      // Dynamic table size update (§6.3).
      integer(5)
    } else {
      // Literal: with incremental indexing (01), without indexing (0000) or never indexed (0001).
      const index = (b & 0xc0) === 0x40 ? integer(6) : integer(4)
      const name = index === 0 ? string() : indexed(index)[0]
      out.push({ name, value: string() })
    }
  }
  return out
}

// --- a client ------------------------------------------------------------------------------------------------

/** What a stream received. */
export interface StreamState {
  /** Decoded fields of every HEADERS (+ CONTINUATION) block, in order. */
  headers: DecodedField[][]
  data: Buffer[]
  /** The RST_STREAM error code, if the server reset the stream. */
  reset: number | undefined
  /** True once the server ended the stream (END_STREAM). */
  ended: boolean
}

/**
 * One HTTP/2 connection over TCP with prior knowledge. It sends the preface and SETTINGS (header table size 0),
 * acknowledges the server's SETTINGS and PINGs, keeps connection and stream windows open, and records every
 * frame. All waits are bounded (`eventually`).
 */
export class H2Client {
  readonly socket: net.Socket
  readonly frames: Frame[] = []
  readonly streams = new Map<number, StreamState>()
  goaway: ReturnType<typeof parseGoaway> | null = null
  closed = false
  /** Bytes written, counted by `send` (what the socket accepted is its own business). */
  sent = 0
  readonly #reader = new FrameReader()
  #headerBlock: { streamId: number, parts: Buffer[] } | null = null

  private constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.#reader.push(chunk)) this.#onFrame(f)
    })
    // A reset by the server is an outcome the tests look at, not a failure of the helper.
    socket.on('error', () => {})
    socket.on('close', () => { this.closed = true })
  }

  /** Connects, sends the preface and SETTINGS, and waits for the server's SETTINGS. */
  static async connect (port: number, extraSettings: [number, number][] = []): Promise<H2Client> {
    const socket = net.connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    const c = new H2Client(socket)
    c.send(Buffer.concat([PREFACE, settings([[S.HEADER_TABLE_SIZE, 0], [S.ENABLE_PUSH, 0], ...extraSettings])]))
    await c.until('the server sends its SETTINGS', () => c.frames.some((f) => f.type === T.SETTINGS && (f.flags & F.ACK) === 0))
    return c
  }

  /** Writes bytes unless the socket is gone; returns whether they were handed to the socket. */
  send (bytes: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false
    this.sent += bytes.length
    this.socket.write(bytes)
    return true
  }

  stream (id: number): StreamState {
    let s = this.streams.get(id)
    if (s === undefined) {
      s = { headers: [], data: [], reset: undefined, ended: false }
      this.streams.set(id, s)
    }
    return s
  }

  /** Sends a request's HEADERS: one frame, END_HEADERS, `fields` (pseudo-header fields first) encoded as given. */
  request (streamId: number, fields: readonly (readonly [string, string])[], endStream = true): void {
    this.send(headers(streamId, encodeHeaders(fields), { endStream }))
  }

  /** The `:status` of a stream's first response HEADERS, or undefined. */
  status (streamId: number): number | undefined {
    const v = this.streams.get(streamId)?.headers[0]?.find((f) => f.name === ':status')?.value
    return v === undefined ? undefined : Number(v)
  }

  body (streamId: number): string {
    return Buffer.concat(this.streams.get(streamId)?.data ?? []).toString('utf8')
  }

  /** True when the stream is over one way or another: ended, reset, or the connection went away. */
  settled (streamId: number): boolean {
    const s = this.streams.get(streamId)
    return this.closed || this.goaway !== null || (s !== undefined && (s.ended || s.reset !== undefined))
  }

  /** Waits (bounded) for `check`; fails the test naming `what` otherwise. */
  until (what: string, check: () => boolean, ms = 5000): Promise<void> {
    return eventually(what, check, { ms, every: 10 })
  }

  close (): void {
    this.socket.destroy()
  }

  #onFrame (f: Frame): void {
    this.frames.push(f)
    switch (f.type) {
      case T.SETTINGS:
        if ((f.flags & F.ACK) === 0) this.send(settingsAck())
        break
      case T.PING:
        if ((f.flags & F.ACK) === 0) this.send(frame(T.PING, F.ACK, 0, f.payload))
        break
      case T.GOAWAY:
        this.goaway = parseGoaway(f.payload)
        break
      case T.RST_STREAM:
        this.stream(f.streamId).reset = parseRstStream(f.payload)
        break
      case T.HEADERS:
      case T.CONTINUATION: {
        let payload = f.payload
        if (f.type === T.HEADERS) {
          // Strip padding and priority fields (RFC 9113 §6.2).
          let start = 0
          let end = payload.length
          if ((f.flags & F.PADDED) !== 0) {
            end -= payload[0]
            start = 1
          }
          if ((f.flags & F.PRIORITY) !== 0) start += 5
          payload = payload.subarray(start, end)
          this.#headerBlock = { streamId: f.streamId, parts: [] }
        }
        this.#headerBlock?.parts.push(payload)
        if ((f.flags & F.END_HEADERS) !== 0 && this.#headerBlock !== null) {
          let fields: DecodedField[]
          try {
            fields = decodeHeaders(Buffer.concat(this.#headerBlock.parts))
          } catch (err) {
            // Recorded, not thrown from a socket event: the test's assertions show it.
            fields = [{ name: ':decode-error', value: (err as Error).message }]
          }
          this.stream(this.#headerBlock.streamId).headers.push(fields)
          this.#headerBlock = null
        }
        if (f.type === T.HEADERS && (f.flags & F.END_STREAM) !== 0) this.stream(f.streamId).ended = true
        break
      }
      case T.DATA: {
        const s = this.stream(f.streamId)
        let payload = f.payload
        if ((f.flags & F.PADDED) !== 0) payload = payload.subarray(1, payload.length - payload[0])
        s.data.push(payload)
        if ((f.flags & F.END_STREAM) !== 0) s.ended = true
        // Give the flow-control credit back at once, for the connection and the stream.
        if (f.payload.length > 0) {
          this.send(windowUpdate(0, f.payload.length))
          if (!s.ended) this.send(windowUpdate(f.streamId, f.payload.length))
        }
        break
      }
    }
  }
}
