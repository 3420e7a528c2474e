/**
 * Upgrade exchanges (WebSocket and other `Upgrade:` handshakes). The handshake is routed like any request and
 * forwarded with hop-by-hop rules applied (undici sends `Connection: upgrade` and the `Upgrade` token itself);
 * on 101 the client and node sockets are joined both ways with backpressure (`pipe`), an idle timeout, and
 * close/abort propagated in both directions. A node that refuses the upgrade (any final status) has its response
 * relayed to the client as is, then the connection closes.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Http2ServerResponse } from 'node:http2'
import { performance } from 'node:perf_hooks'
import { classifyUpstreamError } from './classify.js'
import { ProxyError, type ErrorCode } from './errors.js'
import { filterResponseHeaders } from './upstream/headers.js'
import type { AttemptObserver, ResponseHandler } from './upstream/types.js'
import type { AccessRecord } from './observability/logger.js'
import type { ExchangeContext } from './exchange.js'

/** One upgrade handshake and, after 101, its tunnel. */
export class UpgradeExchange implements ResponseHandler, AttemptObserver {
  readonly #id: string
  readonly #req: IncomingMessage
  readonly #client: Duplex
  readonly #head: Buffer
  readonly #ctx: ExchangeContext
  readonly #host: string
  readonly #route: string | null
  readonly #idleTimeout: number
  readonly #start = performance.now()
  #upstreamId: string | null = null
  #abort: ((reason?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #headWritten = false
  #status = 0
  #bytesIn = 0
  #bytesOut = 0
  #done = false
  /** Set for WebSocket over HTTP/2 (RFC 8441): heads go through the stream's response, 200 stands for 101. */
  readonly #h2: Http2ServerResponse | null

  constructor (id: string, req: IncomingMessage, client: Duplex, head: Buffer, ctx: ExchangeContext, host: string, route: string | null, idleTimeout: number, h2: Http2ServerResponse | null = null) {
    this.#h2 = h2
    this.#id = id
    this.#req = req
    this.#client = client
    this.#head = head
    this.#ctx = ctx
    this.#host = host
    this.#route = route
    this.#idleTimeout = idleTimeout
    client.on('error', (err) => this.#ctx.logger.debug({ reqId: id, err }, 'client socket error during upgrade'))
    client.once('close', () => {
      if (this.#status === 0) {
        this.#abort?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
        this.#finish(499, 'PORTICO_ERR_CLIENT_ABORTED')
      }
    })
  }

  onAttempt (upstreamId: string): void {
    this.#upstreamId = upstreamId
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
    if (this.#client.destroyed) abort(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
  }

  /** The node answered without switching protocols: relay that response, then close. */
  onHeaders (status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) return true
    this.#status = status
    const headers = filterResponseHeaders(rawHeaders)
    this.#writeHead(status, statusText, headers, ['connection', 'close'])
    this.#resume = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    this.#bytesOut += chunk.length
    if (this.#client.write(chunk)) return true
    this.#client.once('drain', () => this.#resume?.())
    return false
  }

  onComplete (): void {
    this.#client.end()
    this.#finish(this.#status)
  }

  onError (err: Error): void {
    if (this.#done) return
    const perr = classifyUpstreamError(err)
    if (!this.#headWritten && !this.#client.destroyed) {
      const status = perr.status === 499 ? 400 : perr.status
      const body = `${status} ${STATUS_CODES[status] ?? ''}\n${perr.code}\nrequest id: ${this.#id}\n`
      this.#writeHead(status, STATUS_CODES[status] ?? '', [
        'content-type', 'text/plain; charset=utf-8',
        'content-length', String(Buffer.byteLength(body)),
        'proxy-status', `portico; error=${perr.proxyStatus}; details="${perr.code}"`,
        'x-request-id', this.#id
      ], ['connection', 'close'])
      this.#client.end(body)
      this.#finish(status, perr.code)
      return
    }
    this.#client.destroy()
    this.#finish(this.#status || perr.status, perr.code)
  }

  onUpgrade (status: number, rawHeaders: Buffer[], upstream: Duplex): void {
    this.#status = status
    const client = this.#client
    if (client.destroyed) {
      upstream.destroy()
      this.#finish(499, 'PORTICO_ERR_CLIENT_ABORTED')
      return
    }
    // The handshake's Connection/Upgrade are hop-by-hop yet define the switch: restate them for this hop.
    let upgradeToken = 'websocket'
    for (let i = 0; i < rawHeaders.length; i += 2) {
      if (rawHeaders[i].toString('latin1').toLowerCase() === 'upgrade') upgradeToken = rawHeaders[i + 1].toString('latin1')
    }
    this.#writeHead(status, 'Switching Protocols', filterResponseHeaders(rawHeaders), ['connection', 'Upgrade', 'upgrade', upgradeToken])
    if (this.#head.length > 0) upstream.write(this.#head)

    upstream.on('error', (err) => this.#ctx.logger.debug({ reqId: this.#id, err }, 'upstream socket error in tunnel'))
    const countIn = (c: Buffer): void => { this.#bytesIn += c.length }
    const countOut = (c: Buffer): void => { this.#bytesOut += c.length }
    client.on('data', countIn)
    upstream.on('data', countOut)
    // pipe() gives backpressure both ways; end is passed on as a half-close.
    client.pipe(upstream)
    upstream.pipe(client)
    const close = (): void => {
      this.#ctx.tunnels.delete(close)
      client.destroy()
      upstream.destroy()
      this.#finish(101)
    }
    this.#ctx.tunnels.add(close)
    client.once('close', close)
    upstream.once('close', close)
    if (this.#idleTimeout > 0) {
      const sockets = [client, upstream] as unknown as { setTimeout?: (ms: number, cb: () => void) => void }[]
      for (const s of sockets) s.setTimeout?.(this.#idleTimeout, close)
    }
    // The client socket was paused by Node for the upgrade event.
    client.resume()
  }

  #writeHead (status: number, text: string, headers: string[], extra: string[]): void {
    this.#headWritten = true
    if (this.#h2 !== null) {
      // RFC 8441 §5: a 2xx answers the extended CONNECT; the handshake fields of HTTP/1.1 do not exist in HTTP/2.
      const out: string[] = []
      for (let i = 0; i < headers.length; i += 2) {
        const n = headers[i].toLowerCase()
        if (n !== 'sec-websocket-accept' && n !== 'connection' && n !== 'upgrade') out.push(n, headers[i + 1])
      }
      this.#h2.writeHead(status === 101 ? 200 : status, out as unknown as import('node:http2').OutgoingHttpHeaders)
      return
    }
    let head = `HTTP/1.1 ${status} ${text || STATUS_CODES[status] || ''}\r\n`
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
    for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`
    this.#client.write(`${head}\r\n`, 'latin1')
  }

  #finish (status: number, errorCode?: ErrorCode): void {
    if (this.#done) return
    this.#done = true
    if (!this.#ctx.accessLog) return
    const record: AccessRecord & { upgrade: string, bytesIn: number } = {
      reqId: this.#id,
      remoteAddr: this.#req.socket?.remoteAddress,
      method: this.#req.method ?? 'GET',
      host: this.#host,
      path: this.#req.url ?? '',
      route: this.#route,
      upstream: this.#upstreamId,
      status,
      bytes: this.#bytesOut,
      bytesIn: this.#bytesIn,
      upgrade: String(this.#req.headers.upgrade ?? ''),
      durationMs: Math.round((performance.now() - this.#start) * 1000) / 1000
    }
    if (errorCode !== undefined) record.error = errorCode
    this.#ctx.logger.info(record)
  }
}
