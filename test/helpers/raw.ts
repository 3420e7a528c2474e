/**
 * Raw HTTP/1.1 over a `node:net` socket, for tests that send bytes no HTTP client would: `rawSession` writes them and
 * collects the whole reply until the server closes the connection, the expected number of responses has arrived,
 * or a bounded wait passes; `parseResponses` splits the reply into responses (Content-Length and chunked bodies).
 * Only 127.0.0.1; nothing is mocked.
 */
import net from 'node:net'

export interface RawResponse {
  status: number
  reason: string
  /** Lower-cased field names; repeated fields joined with ", ". */
  headers: Record<string, string>
  body: string
}

export interface RawSession {
  /** Every byte received, latin1. */
  raw: string
  /** The complete responses in `raw`, in order. */
  responses: RawResponse[]
  /** Bytes after the last complete response (a partial response), latin1. */
  rest: string
  /** True when the server closed (FIN or reset) the connection; false when the client gave up or had enough. */
  closedByServer: boolean
}

/**
 * Parses consecutive HTTP/1.1 responses. A response without Content-Length or chunked framing runs to the end of
 * the data (RFC 9112 §6.3), except for 1xx, 204 and 304, which have no body.
 */
export function parseResponses (data: string): { responses: RawResponse[], rest: string } {
  const responses: RawResponse[] = []
  let pos = 0
  for (let n = 0; n < 1000 && pos < data.length; n++) {
    const headEnd = data.indexOf('\r\n\r\n', pos)
    if (headEnd === -1) break
    const lines = data.slice(pos, headEnd).split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0])
    if (m === null) break
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
    }
    const status = Number(m[1])
    let bodyStart = headEnd + 4
    let body = ''
    if (status < 200 || status === 204 || status === 304) {
      body = ''
    } else if (headers['transfer-encoding'] !== undefined) {
      let chunked = ''
      let complete = false
      for (let c = 0; c < 100_000; c++) {
        const lineEnd = data.indexOf('\r\n', bodyStart)
        if (lineEnd === -1) break
        const size = parseInt(data.slice(bodyStart, lineEnd), 16)
        if (Number.isNaN(size)) break
        if (size === 0) {
          // No trailers expected from these servers: the last chunk is followed by an empty line.
          const end = data.indexOf('\r\n', lineEnd + 2)
          if (end === -1) break
          bodyStart = end + 2
          complete = true
          break
        }
        if (lineEnd + 2 + size + 2 > data.length) break
        chunked += data.slice(lineEnd + 2, lineEnd + 2 + size)
        bodyStart = lineEnd + 2 + size + 2
      }
      if (!complete) break
      body = chunked
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length'])
      if (bodyStart + length > data.length) break
      body = data.slice(bodyStart, bodyStart + length)
      bodyStart += length
    } else {
      body = data.slice(bodyStart)
      bodyStart = data.length
    }
    responses.push({ status, reason: m[2], headers, body })
    pos = bodyStart
  }
  return { responses, rest: data.slice(pos) }
}

/** What `rawSession` sends: bytes, or a step to await before the next bytes (e.g. "the origin saw the head"). */
export type RawStep = string | Buffer | (() => Promise<unknown>)

/**
 * Writes `data` on a fresh connection to 127.0.0.1:`port` — one write, or a list of writes and steps awaited in
 * between — and reads until the server closes, until `responses` complete responses arrived (then the client
 * waits `settleMs` more for anything unexpected, and closes), or until `ms` passed.
 */
export function rawSession (port: number, data: RawStep | RawStep[], options: { responses?: number, ms?: number, settleMs?: number } = {}): Promise<RawSession> {
  const writes = Array.isArray(data) ? data : [data]
  const want = options.responses ?? Infinity
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let closedByServer = false
    let done = false
    let settle: NodeJS.Timeout | undefined
    const finish = (): void => {
      if (done) return
      done = true
      clearTimeout(limit)
      clearTimeout(settle)
      socket.destroy()
      const raw = Buffer.concat(chunks).toString('latin1')
      const { responses, rest } = parseResponses(raw)
      resolve({ raw, responses, rest, closedByServer })
    }
    const limit = setTimeout(finish, options.ms ?? 3000)
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      if (settle === undefined && parseResponses(Buffer.concat(chunks).toString('latin1')).responses.length >= want) {
        settle = setTimeout(finish, options.settleMs ?? 100)
      }
    })
    socket.on('end', () => {
      closedByServer = true
      finish()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        closedByServer = true
        finish()
      } else if (!done) {
        done = true
        clearTimeout(limit)
        reject(err)
      }
    })
    socket.on('close', finish)
    socket.once('connect', async () => {
      for (const step of writes) {
        if (done || socket.destroyed) return
        if (typeof step === 'function') {
          try {
            await step()
          } catch (err) {
            done = true
            clearTimeout(limit)
            socket.destroy()
            reject(err)
            return
          }
        } else {
          // Strings are bytes (latin1): a test's 0x80–0xff characters are sent as single bytes, never UTF-8.
          socket.write(typeof step === 'string' ? Buffer.from(step, 'latin1') : step)
        }
      }
    })
  })
}
