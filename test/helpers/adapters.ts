/**
 * Test helpers for the adapter tests (Node's servers, Connect, Express, Fastify, fetch): the recording origin
 * behind every case, an app server on 127.0.0.1:0, HTTP/1.1 and WebSocket clients that hash what they send and
 * receive, and deterministic pseudo-random byte streams. Built on servers.ts; nothing here mocks node:http.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type RequestListener } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { WebSocket, WebSocketServer } from 'ws'
import { startOrigin, writeRepeated, type Origin } from './servers.js'

export const MiB = 1024 * 1024
export const BIG = 100 * MiB
export const BLOCK = randomBytes(64 * 1024)

/** SHA-256 of what the origin's /big sends: BLOCK repeated to 100 MiB. */
export const BIG_SHA256 = ((): string => {
  const h = createHash('sha256')
  for (let i = 0; i < BIG / BLOCK.length; i++) h.update(BLOCK)
  return h.digest('hex')
})()

/** A request after a framework's body parser: what it may have kept, and the URL before a mount stripped it. */
export type ParsedRequest = IncomingMessage & { originalUrl?: string, body?: unknown, rawBody?: Buffer }

// --- the origin ------------------------------------------------------------------------------------------------

/** A request as the origin received it, body included (hashed whole, kept up to 1 MiB). */
export interface Arrival {
  method: string
  url: string
  headers: IncomingHttpHeaders
  bytes: number
  sha256: string
  body: Buffer
}

export interface TestOrigin extends Origin {
  arrivals: Arrival[]
  handshakes: { url: string, headers: IncomingHttpHeaders }[]
  /** Resolves once a GET /endless response closes. */
  endlessClosed: Promise<void>
}

/**
 * The origin behind every case: GET /big sends 100 MiB, GET /endless streams until its response closes, every
 * other request is recorded with its body and answered "origin saw METHOD URL"; WebSocket messages are echoed.
 */
export async function testOrigin (): Promise<TestOrigin> {
  const arrivals: Arrival[] = []
  const handshakes: TestOrigin['handshakes'] = []
  let onEndlessClosed!: () => void
  const endlessClosed = new Promise<void>((resolve) => { onEndlessClosed = resolve })
  const origin = await startOrigin((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG })
      writeRepeated(res, BLOCK, BIG)
      return
    }
    if (req.url === '/endless') {
      res.on('close', onEndlessClosed)
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      const pump = (): void => {
        while (!res.destroyed) if (!res.write(BLOCK)) { res.once('drain', pump); return }
      }
      pump()
      return
    }
    const hash = createHash('sha256')
    const kept: Buffer[] = []
    let bytes = 0
    req.on('data', (c: Buffer) => {
      hash.update(c)
      bytes += c.length
      if (bytes <= MiB) kept.push(c)
    })
    req.on('end', () => {
      arrivals.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes, sha256: hash.digest('hex'), body: Buffer.concat(kept) })
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`origin saw ${req.method} ${req.url}`)
    })
  })
  const wss = new WebSocketServer({ noServer: true })
  origin.server.on('upgrade', (req: IncomingMessage, socket, head) => {
    handshakes.push({ url: req.url ?? '', headers: req.headers })
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })))
  })
  const close = origin.close
  return Object.assign(origin, {
    arrivals,
    handshakes,
    endlessClosed,
    close: async () => {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      await close()
    }
  })
}

// --- the app's server ------------------------------------------------------------------------------------------

export interface App {
  url: string
  port: number
  server: http.Server
  close (): Promise<void>
}

/** Serves `listener` (a Connect or Express app) with node:http on 127.0.0.1:0. */
export async function serve (listener: RequestListener): Promise<App> {
  const server = http.createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}

// --- HTTP/1.1 and WebSocket clients ----------------------------------------------------------------------------

export interface CallReply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export interface Clients {
  /** One HTTP/1.1 request over http or https; each string or Buffer is one write. */
  call (url: string, options?: { method?: string, path?: string, headers?: http.OutgoingHttpHeaders, chunks?: (string | Buffer)[] }): Promise<CallReply>
  /** Uploads `size` bytes, chunked; resolves with the reply status and the SHA-256 of what was sent. */
  upload (url: string, size: number): Promise<{ status: number, sha256: string }>
  /** GETs `url` and hashes the body as it arrives. */
  download (url: string): Promise<{ status: number, bytes: number, sha256: string }>
  /** GETs `url` (asserting a 200) and destroys the request once 1 MiB of the body has arrived. */
  leaveMidDownload (url: string): Promise<void>
  /** Opens a WebSocket; a refused handshake rejects with "handshake answered STATUS". */
  openWebSocket (url: string, headers?: Record<string, string>): Promise<WebSocket>
}

/**
 * Clients for http:// and https:// (ws:// and wss://) URLs, one fresh connection per request. With `ca`, TLS
 * connections trust that certificate and name "localhost", whatever Host header a case sends.
 */
export function clients (ca?: string): Clients {
  const requestFor = (url: string): typeof https.request => new URL(url).protocol === 'https:' ? https.request : http.request
  const getFor = (url: string): typeof https.get => new URL(url).protocol === 'https:' ? https.get : http.get
  return {
    call (url, options = {}) {
      const u = new URL(url)
      const request = requestFor(url)
      return new Promise((resolve, reject) => {
        const req = request({
          host: u.hostname,
          port: u.port,
          method: options.method ?? 'GET',
          path: options.path ?? `${u.pathname}${u.search}`,
          headers: options.headers,
          ca,
          // Name the certificate's host for TLS, whatever Host header a case sends.
          servername: 'localhost',
          agent: false
        }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
          res.on('error', reject)
        })
        req.on('error', reject)
        for (const c of options.chunks ?? []) req.write(c)
        req.end()
      })
    },

    upload (url, size) {
      const request = requestFor(url)
      const hash = createHash('sha256')
      return new Promise((resolve, reject) => {
        const req = request(url, { method: 'POST', agent: false, ca, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
          res.resume()
          res.on('end', () => resolve({ status: res.statusCode ?? 0, sha256: hash.digest('hex') }))
        })
        req.on('error', reject)
        pumpInto(req, size, hash)
      })
    },

    download (url) {
      const get = getFor(url)
      return new Promise((resolve, reject) => {
        get(url, { agent: false, ca }, (res) => {
          const hash = createHash('sha256')
          let bytes = 0
          res.on('data', (c: Buffer) => { hash.update(c); bytes += c.length })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex') }))
          res.on('error', reject)
        }).on('error', reject)
      })
    },

    leaveMidDownload (url) {
      const get = getFor(url)
      return new Promise((resolve, reject) => {
        const req = get(url, { agent: false, ca }, (res) => {
          assert.equal(res.statusCode, 200)
          let bytes = 0
          res.on('error', () => {})
          res.on('data', (c: Buffer) => {
            bytes += c.length
            if (bytes >= MiB && !req.destroyed) {
              req.destroy()
              resolve()
            }
          })
        })
        req.on('error', (err) => { if (!req.destroyed) reject(err) })
      })
    },

    openWebSocket (url, headers = {}) {
      const ws = new WebSocket(url, { headers, ca })
      return new Promise((resolve, reject) => {
        ws.once('open', () => resolve(ws))
        ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)))
        ws.once('error', reject)
      })
    }
  }
}

/** Writes `size` bytes of BLOCK, each chunk stamped with a counter, honouring backpressure; hashes what it wrote. */
export function pumpInto (sink: NodeJS.WritableStream, size: number, hash: ReturnType<typeof createHash>): void {
  let left = size
  const pump = (): void => {
    while (left > 0) {
      const chunk = Buffer.from(BLOCK.subarray(0, Math.min(left, BLOCK.length)))
      chunk.writeUInt32BE(left >>> 0, 0)
      left -= chunk.length
      hash.update(chunk)
      if (!sink.write(chunk)) { sink.once('drain', pump); return }
    }
    sink.end()
  }
  pump()
}

/** POSTs `chunks` one write each (so more than one means chunked framing). */
export function post (url: string, path: string, chunks: (string | Buffer)[], headers: http.OutgoingHttpHeaders): Promise<{ status: number, headers: IncomingHttpHeaders, body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', agent: false, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    for (const c of chunks) req.write(c)
    req.end()
  })
}

/** Sends `text` and resolves with the next message. */
export async function echo (ws: WebSocket, text: string): Promise<string> {
  ws.send(text)
  const [msg] = await once(ws, 'message') as [Buffer]
  return msg.toString()
}

export async function closeWebSocket (ws: WebSocket): Promise<void> {
  const closed = once(ws, 'close')
  ws.close()
  await closed
}

// --- generated bodies ------------------------------------------------------------------------------------------

/**
 * `size` deterministic pseudo-random bytes in 64 KiB chunks, each stamped with a counter and hashed as it is
 * produced; `next()` answers null at the end, once `digest` has resolved.
 */
function stampedChunks (size: number): { next (): Buffer | null, digest: Promise<string> } {
  const hash = createHash('sha256')
  const block = randomBytes(64 * 1024)
  let left = size
  let resolveDigest!: (d: string) => void
  const digest = new Promise<string>((resolve) => { resolveDigest = resolve })
  return {
    digest,
    next () {
      if (left === 0) {
        resolveDigest(hash.digest('hex'))
        return null
      }
      const n = Math.min(left, block.length)
      const chunk = Buffer.from(block.subarray(0, n))
      chunk.writeUInt32BE(left >>> 0, 0)
      left -= n
      hash.update(chunk)
      return chunk
    }
  }
}

/** A deterministic pseudo-random stream of `size` bytes, hashed as it is produced. */
export function generated (size: number): { stream: Readable, digest: Promise<string> } {
  const chunks = stampedChunks(size)
  const stream = new Readable({
    read () {
      this.push(chunks.next())
    }
  })
  return { stream, digest: chunks.digest }
}

/** A deterministic pseudo-random web stream of `size` bytes, hashed as it is produced. */
export function generatedWeb (size: number): { stream: ReadableStream<Uint8Array>, digest: Promise<string> } {
  const chunks = stampedChunks(size)
  const stream = new ReadableStream<Uint8Array>({
    pull (controller) {
      const chunk = chunks.next()
      if (chunk === null) controller.close()
      else controller.enqueue(chunk)
    }
  })
  return { stream, digest: chunks.digest }
}

/** Hashes a body to the end: its SHA-256 and length. */
export async function hashOf (body: AsyncIterable<Uint8Array>): Promise<{ digest: string, bytes: number }> {
  const h = createHash('sha256')
  let bytes = 0
  for await (const c of body) { h.update(c); bytes += c.length }
  return { digest: h.digest('hex'), bytes }
}
