/**
 * Upgrade exchanges (WebSocket and other `Upgrade:` handshakes). The handshake is routed like any request, runs the
 * same hooks (`onRequest` may refuse it with an answer, `onUpstreamRequest` edits what goes upstream,
 * `onUpstreamResponse` the head that comes back, `onError` the failure answer, `onResponse` sees the record), and is
 * forwarded with hop-by-hop rules applied (undici sends `Connection: upgrade` and the `Upgrade` token itself). On 101
 * the client and node sockets are joined both ways with backpressure (`pipe`), an idle timeout, and close/abort
 * propagated in both directions. A node that refuses the upgrade (any final status) has its response relayed to the
 * client as is, then the connection closes.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Http2ServerResponse, OutgoingHttpHeaders } from 'node:http2'
import { performance } from 'node:perf_hooks'
import { classifyUpstreamError } from './classify.js'
import { ProxyError, type ErrorCode } from './errors.js'
import { errorAnswer, rawHead } from './error-response.js'
import { filterResponseHeaders } from './upstream/headers.js'
import { latin1, lowerAscii } from './http/fields.js'
import type { ResponseHandler } from './upstream/types.js'
import { answerParts, runOnError, runOnUpstreamResponse, type Answerable, type CompiledHooks, type HookAnswer } from './hooks.js'
import { accessRecord, endExchange, wantsRecord, type FailedAttempt } from './observability/access-log.js'
import type { ExchangeContext } from './exchange.js'
import type { TraceIds } from './observability/trace-context.js'
import { chain } from './observability/chain.js'

/** One upgrade handshake and, after 101, its tunnel. */
export class UpgradeExchange implements ResponseHandler, Answerable {
  readonly id: string
  #onFinished: (() => void) | null = null
  readonly req: IncomingMessage
  readonly #client: Duplex
  readonly #head: Buffer
  readonly #ctx: ExchangeContext
  /** The normalized request host (HookContext). */
  readonly host: string
  /** The route name, or null when no route matched (HookContext). */
  readonly route: string | null
  readonly #idleTimeout: number
  readonly #hooks: CompiledHooks | null
  readonly #start = performance.now()
  #upstreamId: string | null = null
  /** The trace ids of the hop to the node (W3C Trace Context), when tracing is on. */
  trace: TraceIds | null = null
  /** HookContext: the client's address (set by the pipeline when it is behind a trusted proxy). */
  clientAddress: string | undefined
  #failed: FailedAttempt[] | null = null
  #abort: ((reason?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #headWritten = false
  #status = 0
  #bytesIn = 0
  #bytesOut = 0
  #done = false
  #errorCode: ErrorCode | undefined
  /** Set for WebSocket over HTTP/2 (RFC 8441): heads go through the stream's response, 200 stands for 101. */
  readonly #h2: Http2ServerResponse | null

  constructor (id: string, req: IncomingMessage, client: Duplex, head: Buffer, ctx: ExchangeContext, host: string, route: string | null, idleTimeout: number, hooks: CompiledHooks | null, h2: Http2ServerResponse | null = null) {
    this.#h2 = h2
    this.id = id
    this.req = req
    this.clientAddress = req.socket?.remoteAddress
    this.#client = client
    this.#head = head
    this.#ctx = ctx
    this.host = host
    this.route = route
    this.#idleTimeout = idleTimeout
    this.#hooks = hooks
    client.on('error', (err) => this.#ctx.logger.debug({ reqId: id, err }, 'client socket error during upgrade'))
    client.once('close', () => {
      if (this.#status === 0) {
        this.#abort?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
        this.#finish(499, 'PORTICO_ERR_CLIENT_ABORTED')
      }
    })
  }

  /** True once the handshake was answered or the tunnel closed (its log line is written). */
  get finished (): boolean {
    return this.#done
  }

  // --- ResponseHandler ------------------------------------------------------------------------------------

  onAttempt (upstreamId: string): void {
    this.#upstreamId = upstreamId
  }

  onRetry (upstreamId: string, code: string): void {
    (this.#failed ??= []).push({ upstream: upstreamId, error: code })
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
    if (this.#client.destroyed) abort(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
  }

  /** The node answered without switching protocols: relay that response, then close. */
  onHeaders (status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) return true
    const headers = filterResponseHeaders(rawHeaders)
    if (this.#hooks !== null && this.#hooks.onUpstreamResponse.length > 0) {
      try {
        const edited = runOnUpstreamResponse(this.#hooks, this, status, headers)
        if (edited !== status) statusText = ''
        status = edited
      } catch (err) {
        this.#abort?.(new ProxyError('PORTICO_ERR_INTERNAL', 'onUpstreamResponse hook threw', { cause: err }))
        return false
      }
    }
    this.#status = status
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
      this.sendError(perr)
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
      if (lowerAscii(latin1(rawHeaders[i])) === 'upgrade') upgradeToken = latin1(rawHeaders[i + 1])
    }
    const headers = filterResponseHeaders(rawHeaders)
    if (this.#hooks !== null && this.#hooks.onUpstreamResponse.length > 0) {
      // The switch has happened: hooks may edit the fields of the 101, not its status.
      try {
        runOnUpstreamResponse(this.#hooks, this, status, headers)
      } catch (err) {
        this.#ctx.logger.error({ reqId: this.id, err }, 'onUpstreamResponse hook threw')
      }
    }
    this.#writeHead(status, 'Switching Protocols', headers, ['connection', 'Upgrade', 'upgrade', upgradeToken])
    if (this.#head.length > 0) upstream.write(this.#head)

    upstream.on('error', (err) => this.#ctx.logger.debug({ reqId: this.id, err }, 'upstream socket error in tunnel'))
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

  // --- local answers --------------------------------------------------------------------------------------

  /** Refuses the handshake with an error response (or an onError hook's answer), then closes the connection. */
  sendError (err: ProxyError): void {
    if (this.#done || this.#headWritten) return
    if (err.code === 'PORTICO_ERR_INTERNAL') this.#ctx.logger.error({ reqId: this.id, err: err.cause ?? err }, 'internal error')
    if (this.#hooks !== null && this.#hooks.onError.length > 0) {
      const answer = runOnError(this.#hooks, this, err, this.#ctx.logger)
      if (answer !== undefined) {
        this.#errorCode = err.code
        this.sendAnswer(answer)
        return
      }
    }
    if (this.#client.destroyed) {
      this.#finish(499, err.code)
      return
    }
    const a = errorAnswer(err, this.id)
    this.#writeHead(a.status, '', a.headers, ['connection', 'close'])
    this.#client.end(a.body)
    this.#finish(a.status, err.code)
  }

  /** Runs `fn` once when the exchange ends, however it ends. */
  onFinished (fn: () => void): void {
    if (this.#done) {
      fn()
      return
    }
    this.#onFinished = chain(this.#onFinished, fn)
  }

  /** Answers the handshake with a hook's response instead of forwarding it, then closes the connection. */
  sendAnswer (answer: HookAnswer): void {
    if (this.#done || this.#headWritten) return
    if (this.#client.destroyed) {
      this.#finish(499, 'PORTICO_ERR_CLIENT_ABORTED')
      return
    }
    const { headers, body } = answerParts(answer)
    this.#writeHead(answer.status, '', headers, ['connection', 'close'])
    this.#client.end(body)
    this.#bytesOut += body?.length ?? 0
    this.#finish(answer.status, this.#errorCode)
  }

  // --- internals -----------------------------------------------------------------------------------------

  #writeHead (status: number, text: string, headers: string[], extra: string[]): void {
    this.#headWritten = true
    if (this.#h2 !== null) {
      // RFC 8441 §5: a 2xx answers the extended CONNECT; the handshake fields of HTTP/1.1 do not exist in HTTP/2.
      const out: string[] = []
      for (let i = 0; i < headers.length; i += 2) {
        const n = headers[i].toLowerCase()
        if (n !== 'sec-websocket-accept' && n !== 'connection' && n !== 'upgrade') out.push(n, headers[i + 1])
      }
      this.#h2.writeHead(status === 101 ? 200 : status, out as unknown as OutgoingHttpHeaders)
      return
    }
    let head = rawHead(status, text, headers)
    for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`
    this.#client.write(`${head}\r\n`, 'latin1')
  }

  #finish (status: number, errorCode?: ErrorCode): void {
    if (this.#done) return
    this.#done = true
    this.#errorCode = errorCode
    if (this.#onFinished !== null) this.#onFinished()
    if (!wantsRecord(this.#ctx, this.#hooks)) return
    const record = accessRecord(this, this.#upstreamId, status, this.#bytesOut, this.#start, errorCode, this.#failed)
    if (this.trace !== null) {
      record.traceId = this.trace.traceId
      record.spanId = this.trace.spanId
    }
    record.bytesIn = this.#bytesIn
    record.upgrade = String(this.req.headers.upgrade ?? '')
    endExchange(this.#ctx, this.#hooks, this, record)
  }
}
