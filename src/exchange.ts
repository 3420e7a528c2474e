/**
 * One exchange: a downstream request, its upstream attempts, and the downstream response. It is the
 * `ResponseHandler` the upstream writes into, so the response head, body chunks and trailers go straight to the
 * client's `ServerResponse` with backpressure (a `false` from `res.write` pauses undici until 'drain').
 *
 * Failure rules: before the head, an error becomes an error response (pipeline's `sendError`); after the head,
 * the client's response is destroyed, never completed falsely. A client that leaves aborts the upstream request.
 * Exactly one access-log line is written per exchange.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { TLSSocket } from 'node:tls'
import { classifyUpstreamError } from './classify.js'
import { ProxyError, type ErrorCode } from './errors.js'
import { sendErrorResponse } from './error-response.js'
import { filterResponseHeaders } from './upstream/headers.js'
import { fieldRecord, hasField, latin1 } from './http/fields.js'
import type { ResponseHandler } from './upstream/types.js'
import { answerParts, runOnError, runOnUpstreamResponse, type Answerable, type CompiledHooks, type HookAnswer } from './hooks.js'
import { accessRecord, endExchange, wantsRecord, type FailedAttempt } from './observability/access-log.js'
import type { Logger } from './observability/logger.js'
import type { Runtime } from './runtime.js'
import type { Tunnels } from './server/connections.js'
import type { RuleState } from './rules/route-rules.js'
import { cacheResult, upstreamAttempt, upstreamRetry } from './observability/channels.js'
import { Encoder } from './rules/compress.js'
import { fieldValue } from './http/fields.js'
import type { TraceIds } from './observability/trace-context.js'
import { chain } from './observability/chain.js'

/** What an exchange needs from its surroundings. */
export interface ExchangeContext {
  logger: Logger
  accessLog: boolean
  /** With `log.format: combined`, where access lines go. */
  accessLine?: ((line: string) => void) | null
  /** True once the proxy is closing: responses then carry Connection: close. */
  isDraining (): boolean
  /** Open upgrade tunnels: a drain waits for them and closes them at its deadline. */
  tunnels: Tunnels
  /** The runtime in force now (it changes on reload); for work that outlives the request's own runtime. */
  runtime?: () => Runtime
}

/** Request-scoped state. Created by the pipeline once a route matched. */
export class Exchange implements ResponseHandler, Answerable {
  readonly id: string
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly #ctx: ExchangeContext
  readonly #start: number
  /** The normalized request host (HookContext). */
  readonly host: string
  /** The route name, or null when no route matched (HookContext). */
  readonly route: string | null
  #upstreamId: string | null = null
  /** The trace ids of the hop to the node (W3C Trace Context), when tracing is on. */
  trace: TraceIds | null = null
  /** When the last attempt was dispatched, and how long its node took to answer with a head (-1: not yet). */
  #attemptAt = 0
  #upstreamMs = -1
  /** HookContext: the client's address (set by the pipeline when it is behind a trusted proxy). */
  clientAddress: string | undefined
  #failed: FailedAttempt[] | null = null
  #abort: ((reason?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #bytes = 0
  #done = false
  #clientGone = false
  #errorCode: ErrorCode | undefined
  #waitingDrain = false
  /** Set by the pipeline for routes with HSTS on TLS connections (RFC 6797 §7.1). */
  hsts: string | null = null
  /** The Via entry this proxy adds to responses it forwards (RFC 9110 §7.6.3: both ways), or null (headers.via false). */
  via: string | null = null
  /** RFC 9211 Cache-Status for responses Portico builds itself (errors) on cached routes; set by the cache. */
  cacheStatus: string | null = null
  /** The route's traffic rules for this request (set by the pipeline), or null when the route has none. */
  rules: RuleState | null = null
  /** The response body's encoder when the rules compress it. */
  #encoder: Encoder | null = null
  #onFinished: (() => void) | null = null

  readonly #hooks: CompiledHooks | null

  constructor (id: string, req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext, host: string, routeName: string | null, start = performance.now(), hooks: CompiledHooks | null = null) {
    this.id = id
    this.#hooks = hooks
    this.req = req
    this.clientAddress = req.socket?.remoteAddress
    this.res = res
    this.#ctx = ctx
    this.host = host
    this.route = routeName
    this.#start = start
    res.on('close', this.#onResponseClose)
    this.#tls = tlsFacts(req.socket)
  }

  /** TLS facts of the client connection, read while the socket is surely alive (null for cleartext). */
  readonly #tls: TlsFacts | null

  /** True once the exchange was answered or failed (its log line is written). */
  get finished (): boolean {
    return this.#done
  }

  // --- ResponseHandler ------------------------------------------------------------------------------------

  onAttempt (upstreamId: string): void {
    this.#upstreamId = upstreamId
    this.#attemptAt = performance.now()
    if (upstreamAttempt.hasSubscribers) upstreamAttempt.publish({ proxy: this.#ctx, id: this.id, upstream: upstreamId })
  }

  onRetry (upstreamId: string, code: string): void {
    (this.#failed ??= []).push({ upstream: upstreamId, error: code })
    if (upstreamRetry.hasSubscribers) upstreamRetry.publish({ proxy: this.#ctx, id: this.id, upstream: upstreamId, error: code })
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
    if (this.#clientGone) abort(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
  }

  onHeaders (status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean {
    if (this.#clientGone) return false
    if (status < 200) {
      this.#relayInterim(status, rawHeaders)
      return true
    }
    if (this.#attemptAt !== 0) this.#upstreamMs = performance.now() - this.#attemptAt
    const res = this.res
    let headers: string[]
    try {
      headers = filterResponseHeaders(rawHeaders)
      if (this.#hooks !== null && this.#hooks.onUpstreamResponse.length > 0) {
        const edited = runOnUpstreamResponse(this.#hooks, this, status, headers)
        if (edited !== status) statusText = ''
        status = edited
      }
      if (this.hsts !== null && !hasField(headers, 'strict-transport-security')) headers.push('strict-transport-security', this.hsts)
      if (this.via !== null) appendVia(headers, this.via)
      if (this.#ctx.isDraining()) res.shouldKeepAlive = false
      const rules = this.rules
      if (rules !== null && rules.rules.hasResponsePhase) {
        const length = fieldValue(headers, 'content-length')
        const out = rules.rules.response(rules, status, headers)
        if (out.page !== null) {
          this.#sendPage(status, headers, out.page.body, out.page.type)
          return false
        }
        if (out.encoding !== null && this.req.method !== 'HEAD') {
          const type = fieldValue(headers, 'content-type') ?? ''
          const sizeHint = length === undefined ? undefined : Number(length)
          // An event stream is read as it comes: every piece is flushed through the encoder.
          const flushEachWrite = type.toLowerCase().startsWith('text/event-stream')
          if (Encoder.isOneShot(sizeHint, flushEachWrite)) {
            // A small body compressed in one call at its end: the head waits for it and gets its Content-Length
            // (no chunked framing, one write).
            const head = (compressed?: Buffer): void => {
              const last = compressed ?? Buffer.alloc(0)
              headers.push('content-length', String(last.length))
              try {
                if (this.req.httpVersionMajor >= 2) res.writeHead(status, headers)
                else res.writeHead(status, statusText || STATUS_CODES[status] || '', headers)
              } catch (err) {
                res.destroy(err as Error)
                return
              }
              res.end(last)
            }
            this.#encoder = new Encoder(out.encoding, { write: () => true, end: head, once: () => res, destroy: (err) => res.destroy(err) }, { sizeHint })
            this.#resume = resume
            return true
          }
          this.#encoder = new Encoder(out.encoding, res, { sizeHint, flushEachWrite })
        }
      }
      // RFC 9113 §8.3.2: HTTP/2 has no reason phrase.
      if (this.req.httpVersionMajor >= 2) res.writeHead(status, headers)
      else res.writeHead(status, statusText || STATUS_CODES[status] || '', headers)
    } catch (err) {
      // Node refuses a head it cannot serialise (invalid characters): the node's response is not usable.
      this.#abort?.(new ProxyError('PORTICO_ERR_UPSTREAM_PROTOCOL', (err as Error).message, { cause: err }))
      return false
    }
    this.#resume = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    // undici can hand over an empty chunk at a read boundary; writing it would cost an empty write system call.
    if (chunk.length === 0) return true
    const encoder = this.#encoder
    if (encoder !== null) {
      if (encoder.write(chunk)) return true
      if (!this.#waitingDrain) {
        this.#waitingDrain = true
        encoder.onDrain(this.#onDrain)
      }
      return false
    }
    this.#bytes += chunk.length
    if (this.res.write(chunk)) return true
    if (!this.#waitingDrain) {
      this.#waitingDrain = true
      this.res.once('drain', this.#onDrain)
    }
    return false
  }

  onComplete (rawTrailers: Buffer[] | string[] | null): void {
    if (this.#clientGone) return
    if (rawTrailers !== null && rawTrailers.length > 0) this.res.addTrailers(fieldRecord(rawTrailers))
    const encoder = this.#encoder
    if (encoder !== null) {
      // The encoder still flushes into the response: the exchange ends when the response does (or the client leaves).
      this.#abort = null
      this.res.once('finish', () => this.#finish(this.res.statusCode))
      encoder.end()
      return
    }
    this.res.end()
    this.#finish(this.res.statusCode)
  }

  onError (err: Error): void {
    if (this.#done) return
    if (this.#clientGone) {
      this.#finish(499, 'PORTICO_ERR_CLIENT_ABORTED')
      return
    }
    const perr = classifyUpstreamError(err)
    if (!this.res.headersSent) {
      // A one-shot encoder holds the head back: nothing was sent, the failure can still be answered.
      this.#encoder?.destroy()
      this.#encoder = null
      this.sendError(perr)
      return
    }
    // After the head the status cannot change: abort so the client sees an incomplete response.
    this.#ctx.logger.debug({ reqId: this.id, err: perr.cause ?? perr, code: perr.code }, 'upstream failed mid-response')
    this.res.destroy(perr)
    this.#finish(this.res.statusCode, perr.code)
  }

  // --- local answers --------------------------------------------------------------------------------------

  /** Answers with an error response (RFC 9209 Proxy-Status) and logs it. */
  sendError (err: ProxyError): void {
    if (err.code === 'PORTICO_ERR_INTERNAL') this.#ctx.logger.error({ reqId: this.id, err: err.cause ?? err }, 'internal error')
    if (this.#hooks !== null && this.#hooks.onError.length > 0) {
      const answer = runOnError(this.#hooks, this, err, this.#ctx.logger)
      if (answer !== undefined) {
        this.#errorCode = err.code
        this.sendAnswer(answer)
        return
      }
    }
    // A malformed request (400) ends its connection, as nginx does, and requests already pipelined behind it on
    // that connection are dropped unanswered (not forwarded): what follows a malformed request is not trusted.
    // RFC 9112 §9.6: after a response that closes the connection (413 with an unread body too), nothing more is
    // processed on it.
    const closing = this.#ctx.isDraining() || err.status === 400 || err.status === 501 || !this.res.shouldKeepAlive
    if (closing && this.req.httpVersionMajor < 2 && this.req.socket !== null) ENDING.add(this.req.socket)
    sendErrorResponse(this.res, err, this.id, closing, this.cacheStatus, this.rules?.rules.errorPage(err.status) ?? null)
    this.#finish(err.status, err.code)
  }

  /** Answers with a hook's response instead of forwarding (or instead of an error response). */
  sendAnswer (answer: HookAnswer): void {
    const res = this.res
    if (res.headersSent || res.destroyed) return
    const { headers, body } = answerParts(answer)
    if (this.#ctx.isDraining()) res.shouldKeepAlive = false
    res.writeHead(answer.status, headers)
    res.end(this.req.method === 'HEAD' ? undefined : body)
    this.#bytes = body?.length ?? 0
    this.#finish(answer.status, this.#errorCode)
  }

  /** Runs `fn` once when the exchange ends, however it ends (the rules release an in-flight slot with it). */
  onFinished (fn: () => void): void {
    if (this.#done) {
      fn()
      return
    }
    this.#onFinished = chain(this.#onFinished, fn)
  }

  /** Marks the exchange failed by the request side (body limit, client error) before any upstream answer. */
  failRequest (err: ProxyError): void {
    this.#abort?.(err)
    if (!this.res.headersSent) this.sendError(err)
  }

  // --- internals -----------------------------------------------------------------------------------------

  /** An error page in place of the node's error body (errorPages with intercept): the node's body is not read. */
  #sendPage (status: number, headers: string[], body: Buffer, type: string): void {
    headers.push('content-type', type, 'content-length', String(body.length), 'x-request-id', this.id)
    const res = this.res
    if (this.req.httpVersionMajor >= 2) res.writeHead(status, headers)
    else res.writeHead(status, STATUS_CODES[status] ?? '', headers)
    res.end(this.req.method === 'HEAD' ? undefined : body)
    this.#bytes = body.length
    this.#finish(status)
    this.#abort?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED', 'the node\'s error body is replaced by an error page'))
  }

  #relayInterim (status: number, rawHeaders: Buffer[] | string[]): void {
    // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client. 100 Continue was already answered by Node itself.
    if (this.req.httpVersionMinor === 0 && this.req.httpVersionMajor === 1) return
    if (status === 103) {
      // Repeated fields are joined, except Link, which stays a list (one field per hint).
      const hints: Record<string, string | string[]> = fieldRecord(rawHeaders)
      const links: string[] = []
      for (let i = 0; i < rawHeaders.length; i += 2) {
        if (latin1(rawHeaders[i]).toLowerCase() === 'link') links.push(latin1(rawHeaders[i + 1]))
      }
      if (links.length > 0) hints.link = links
      this.res.writeEarlyHints(hints)
    } else if (status === 102) {
      this.res.writeProcessing()
    }
  }

  readonly #onDrain = (): void => {
    this.#waitingDrain = false
    this.#resume?.()
  }

  readonly #onResponseClose = (): void => {
    // Not res.writableFinished: an HTTP/2 response reports it true after a stream reset (RST_STREAM).
    if (this.#done) return
    this.#clientGone = true
    this.#encoder?.destroy()
    if (this.#abort !== null) this.#abort(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
    else this.#finish(499, 'PORTICO_ERR_CLIENT_ABORTED')
  }

  #finish (status: number, errorCode?: ErrorCode): void {
    if (this.#done) return
    this.#done = true
    this.#errorCode = errorCode
    if (this.#onFinished !== null) this.#onFinished()
    if (this.cacheStatus !== null && cacheResult.hasSubscribers) cacheResult.publish({ proxy: this.#ctx, id: this.id, cacheStatus: this.cacheStatus })
    if (this.#encoder !== null) this.#bytes = this.#encoder.bytesOut
    const hooks = this.#hooks
    if (!wantsRecord(this.#ctx, hooks)) return
    const record = accessRecord(this, this.#upstreamId, status, this.#bytes, this.#start, this.#errorCode, this.#failed)
    if (this.trace !== null) {
      record.traceId = this.trace.traceId
      record.spanId = this.trace.spanId
    }
    if (this.#upstreamMs >= 0) record.upstreamMs = Math.round(this.#upstreamMs * 1000) / 1000
    if (this.cacheStatus !== null) record.cache = this.cacheStatus
    if (this.#tls !== null) {
      record.tlsProtocol = this.#tls.protocol
      record.tlsCipher = this.#tls.cipher
      record.sni = this.#tls.sni
    }
    endExchange(this.#ctx, hooks, this, record)
  }
}

interface TlsFacts { protocol?: string, cipher?: string, sni?: string }

const TLS_FACTS = Symbol('portico.tlsFacts')

/**
 * Protocol, cipher and SNI name of a TLS connection, read once per connection and kept on it. Read at the start
 * of an exchange: on Node 20, asking a TLS socket that has already closed for its cipher can crash the process.
 */
function tlsFacts (socket: unknown): TlsFacts | null {
  const s = socket as (TLSSocket & { encrypted?: boolean, [TLS_FACTS]?: TlsFacts }) | null
  if (s === null || s === undefined || s.encrypted !== true) return null
  let facts = s[TLS_FACTS]
  if (facts === undefined) {
    if (s.destroyed) return null
    facts = {
      protocol: s.getProtocol?.() ?? undefined,
      cipher: s.getCipher?.()?.name,
      sni: typeof s.servername === 'string' ? s.servername : undefined
    }
    s[TLS_FACTS] = facts
  }
  return facts
}

/** RFC 9110 §7.6.3: appends this proxy's entry to the response's Via (one field, in order). */
function appendVia (headers: string[], entry: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === 3 && headers[i].toLowerCase() === 'via') {
      headers[i + 1] = `${headers[i + 1]}, ${entry}`
      return
    }
  }
  headers.push('via', entry)
}

/** HTTP/1.x connections that answered a malformed request and close after it. */
const ENDING = new WeakSet<object>()

/** Whether `socket` is closing after a malformed request: a request pipelined behind it is not served. */
export function isEnding (socket: object | null): boolean {
  return socket !== null && ENDING.has(socket)
}
