/**
 * The fetch adapter: `toFetchHandler(proxy)` is `(Request) => Promise<Response>` for Hono and other fetch-style
 * frameworks. The Request is replayed over an in-memory socket to a `node:http` server that never listens and
 * whose request listener is `proxy.handler`, so the whole pipeline runs as for a request on a port (routing,
 * forwarding headers, hooks, timeouts, error responses, the access log) with no port and no copy of the body:
 * both bodies stream, with backpressure, between the web streams and the proxy.
 *
 * This module owns the translation only: web Request → HTTP/1.1 request head and body, HTTP response → web
 * Response. What the fetch API cannot carry is lost at this boundary: response trailers, 1xx responses, and the
 * separation of repeated fields other than Set-Cookie (Headers joins them with ", ").
 */
import http, { type IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import type { ReadableStream as NodeReadableStream } from 'node:stream/web'
import type { Dispatcher } from 'undici'
import { Pool } from '../upstream/undici.js'
import type { Proxy } from '../proxy.js'
import { mountRequest, segmentsOf } from '../routing/mount.js'
import { inMemoryConnector } from '../upstream/in-memory.js'
import { HOP_BY_HOP, addConnectionTokens } from '../http/hop-by-hop.js'
import { filterResponseHeaders } from '../upstream/headers.js'
import type { ResponseHandler } from '../upstream/types.js'

/**
 * Carries the client's address and scheme from the fetch side to the server side of the in-memory connection.
 * Set on every request (a client's own copy is dropped first) and removed before the proxy sees the request.
 */
const FACTS_HEADER = 'x-portico-internal-fetch'

/** Request fields never sent on besides the hop-by-hop ones: `expect`, and `host` (taken from the URL). */
const DROPPED_REQUEST = new Set(['expect', 'host', FACTS_HEADER])

/** Options of `toFetchHandler`. */
export interface FetchHandlerOptions {
  /**
   * The path the handler is mounted at, e.g. "/api" for `app.all('/api/*', (c) => handler(c.req.raw))`. A request
   * under it is forwarded without it and with `X-Forwarded-Prefix: /api`; other requests are forwarded as they
   * are. Default: none.
   */
  prefix?: string
  /**
   * The client's address, for X-Forwarded-For (a Request does not carry one). Called with the request and the
   * handler's second argument (a framework's `env`). Default: `env.incoming.socket.remoteAddress` when present
   * (@hono/node-server and other Node adapters), else none: the core then writes "unknown" for this hop in
   * X-Forwarded-For.
   */
  clientAddress?: (request: Request, env: unknown) => string | undefined
}

/** The handler returned by `toFetchHandler`. */
export interface PorticoFetchHandler {
  /**
   * Forwards one request through the proxy. Resolves with the response once its head arrives (the body streams
   * after); a request no route matches resolves with the proxy's 404, failures with its 502/503/504 responses.
   * Rejects only when the request's signal aborts before the head (with the signal's reason) or the Request is
   * unusable (a body already read).
   */
  (request: Request, env?: unknown): Promise<Response>
  /** Closes the in-memory connections once in-flight requests finish. The Proxy is the caller's to close. */
  close (): Promise<void>
}

/**
 * Wraps a Proxy as a fetch handler. The request's method, URL path and query, headers (Host from the URL) and
 * streamed body reach the proxy; the response's status, headers (every Set-Cookie) and streamed body come back.
 * A request whose `signal` aborts, or a response body that is cancelled, aborts the upstream request.
 */
export function toFetchHandler (proxy: Proxy, options: FetchHandlerOptions = {}): PorticoFetchHandler {
  const prefix = segmentsOf(options.prefix ?? '')
  const clientAddress = options.clientAddress ?? nodeClientAddress
  const server = http.createServer({
    requestTimeout: 0,
    headersTimeout: 0,
    keepAliveTimeout: 60_000,
    maxHeaderSize: proxy.config.server.maxHeaderSize
  } as http.ServerOptions, (req, res) => {
    applyFacts(req)
    mountRequest(req, prefix)
    proxy.handler(req, res)
  })
  server.keepAliveTimeout = 60_000
  const pool = new Pool('http://portico.invalid', {
    connections: null,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    // The proxy's route timeouts apply inside; these would only cut long streams short.
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: inMemoryConnector(server)
  })
  const handler = ((request: Request, env?: unknown) => forward(pool, request, clientAddress(request, env))) as PorticoFetchHandler
  handler.close = async () => {
    await pool.close()
    server.closeAllConnections()
  }
  return handler
}

/** Node adapters for fetch frameworks pass the IncomingMessage as `env.incoming`. */
function nodeClientAddress (_request: Request, env: unknown): string | undefined {
  return (env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress
}

function forward (pool: Pool, request: Request, address: string | undefined): Promise<Response> {
  const signal = request.signal
  if (signal.aborted) return Promise.reject(signal.reason)
  let url: URL
  let body: Readable | null
  try {
    if (request.bodyUsed) throw new TypeError('the request body was already read')
    url = new URL(request.url)
    body = request.body === null ? null : Readable.fromWeb(request.body as NodeReadableStream<Uint8Array>)
  } catch (err) {
    return Promise.reject(err)
  }
  return new Promise((resolve, reject) => {
    pool.dispatch({
      path: `${url.pathname}${url.search}`,
      method: request.method,
      headers: requestHeaders(request.headers, url, address),
      body
    }, new ResponseBridge(request.method, signal, body, resolve, reject) as unknown as Dispatcher.DispatchHandler)
  })
}

/** The request head's fields: Host from the URL, the request's own fields less the dropped ones, the facts. */
function requestHeaders (headers: Headers, url: URL, address: string | undefined): string[] {
  const connection = headers.get('connection')
  const named = connection === null ? null : addConnectionTokens(null, connection)
  const out = ['host', url.host]
  headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name) && !DROPPED_REQUEST.has(name) && named?.has(name) !== true) out.push(name, value)
  })
  out.push(FACTS_HEADER, `${url.protocol === 'https:' ? 'https' : 'http'} ${address ?? '-'}`)
  return out
}

/**
 * Server side: takes the facts header out of the request and gives its socket the client's address and scheme,
 * where the pipeline reads them for X-Forwarded-For/-Proto and the access log. One connection carries one request
 * at a time, so setting them per request is exact.
 */
function applyFacts (req: IncomingMessage): void {
  let facts = ''
  const raw = req.rawHeaders
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i].length === FACTS_HEADER.length && raw[i].toLowerCase() === FACTS_HEADER) {
      facts = raw[i + 1]
      raw.splice(i, 2)
    }
  }
  delete req.headers[FACTS_HEADER]
  const space = facts.indexOf(' ')
  const address = space === -1 ? '-' : facts.slice(space + 1)
  const socket = req.socket as unknown as { remoteAddress?: string, encrypted?: boolean }
  socket.remoteAddress = address === '-' || address === '' ? undefined : address
  socket.encrypted = facts.startsWith('https ')
}

/**
 * The response side, as a ResponseHandler (the callback dialect undici runs natively): resolved at the head, the
 * body a ReadableStream fed chunk by chunk (undici paused while the stream's queue is full, resumed on pull).
 */
class ResponseBridge implements ResponseHandler {
  readonly #method: string
  readonly #signal: AbortSignal
  readonly #body: Readable | null
  readonly #resolve: (response: Response) => void
  readonly #reject: (err: unknown) => void
  #abort: ((reason?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #paused = false
  #stream: ReadableStreamDefaultController<Uint8Array> | null = null
  #settled = false
  #done = false

  constructor (method: string, signal: AbortSignal, body: Readable | null, resolve: (response: Response) => void, reject: (err: unknown) => void) {
    this.#method = method
    this.#signal = signal
    this.#body = body
    this.#resolve = resolve
    this.#reject = reject
    signal.addEventListener('abort', this.#onAbort)
  }

  readonly #onAbort = (): void => {
    this.#abort?.(this.#signal.reason)
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
    if (this.#signal.aborted) abort(this.#signal.reason)
  }

  onHeaders (status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean {
    // A fetch Response has no place for 1xx responses; the final one follows.
    if (status < 200) return true
    this.#resume = resume
    // RFC 9110 §6.4.1: no content for HEAD, 204, 205 and 304; a Response with these cannot have a body.
    const empty = this.#method === 'HEAD' || status === 204 || status === 205 || status === 304
    const body = empty
      ? null
      : new ReadableStream<Uint8Array>({
        start: (c) => { this.#stream = c },
        pull: () => {
          if (!this.#paused) return
          this.#paused = false
          this.#resume?.()
        },
        cancel: (reason) => {
          this.#done = true
          this.#abort?.(reason instanceof Error ? reason : new Error('response body cancelled'))
        }
      }, { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength })
    const headers = responseHeaders(filterResponseHeaders(rawHeaders))
    let response: Response
    try {
      response = new Response(body, { status, statusText: statusText ?? '', headers })
    } catch {
      // A reason phrase the fetch API rejects (obs-text); the status is what matters.
      response = new Response(body, { status, headers })
    }
    this.#settled = true
    this.#resolve(response)
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#stream === null || this.#done) return true
    this.#stream.enqueue(chunk)
    if ((this.#stream.desiredSize ?? 1) > 0) return true
    this.#paused = true
    return false
  }

  onComplete (): void {
    this.#finish()
    if (this.#stream !== null && !this.#done) {
      this.#done = true
      this.#stream.close()
    }
  }

  onError (err: Error): void {
    this.#finish()
    this.#body?.destroy()
    if (!this.#settled) {
      this.#settled = true
      this.#reject(err)
    } else if (this.#stream !== null && !this.#done) {
      this.#done = true
      this.#stream.error(err)
    }
  }

  #finish (): void {
    this.#signal.removeEventListener('abort', this.#onAbort)
  }
}

/** The response's fields (hop-by-hop ones already removed) as web Headers; each Set-Cookie kept as its own field. */
function responseHeaders (flat: string[]): Headers {
  const out = new Headers()
  for (let i = 0; i < flat.length; i += 2) out.append(flat[i], flat[i + 1])
  return out
}
