/**
 * The request pipeline for one downstream request: normalize → route → forward → respond. This is the one place
 * where a failure becomes a response; phases short-circuit as ARCHITECTURE.md lists (400 malformed, 404 no route,
 * 413 too large, 502/503/504 from the upstream side).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { randomBytes } from 'node:crypto'
import { Readable, Transform, type Duplex } from 'node:stream'
import type { Http2ServerResponse } from 'node:http2'
import { ProxyError } from './errors.js'
import { Exchange, sendErrorResponse, type ExchangeContext } from './exchange.js'
import { UpgradeExchange } from './upgrade.js'
import { HeaderList, type CompiledHooks, type HookAnswer } from './hooks.js'
import { normalizeHost } from './routing/host.js'
import { stripPrefix, type Router } from './routing/router.js'
import { buildUpstreamHeaders, INVALID_HOST, type RequestHeaderOptions } from './upstream/headers.js'
import type { DispatchOptions, ResponseHandler, Upstream } from './upstream/types.js'
import type { HttpCache } from './cache/http-cache.js'
import { requestRecord } from './cache/policy.js'

/** A route ready to serve: the resolved route plus its live upstream and precomputed options. */
export interface CompiledRoute {
  name: string
  hosts: readonly string[]
  path: string
  stripPrefix: boolean
  upstream: Upstream
  headerOptions: RequestHeaderOptions
  dispatchOptions: DispatchOptions
  /** Strict-Transport-Security value for responses over TLS, or null. */
  hsts: string | null
  /** The proxy cache, when this route uses it. */
  cache: HttpCache | null
}

/** Everything a request needs, swapped whole on reload. */
export interface Runtime {
  router: Router<CompiledRoute>
  maxRequestBody: number | null
  /** Null when no hooks are configured: then no hook code runs at all. */
  hooks: CompiledHooks | null
}

/** Called when nothing matched, in embedded mode (Express's `next`). */
export type NextFunction = (err?: unknown) => void

const ID_PREFIX = randomBytes(4).toString('hex')
let idCounter = 0

/** A short exchange id, unique within the process: "1f2e3d4c-1a". */
export function nextRequestId (): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${ID_PREFIX}-${idCounter.toString(36)}`
}

/** Where a request goes, after normalize and route. */
interface Routed {
  target: string
  hostRaw: string
  host: string
  route: CompiledRoute
  prefixLength: number
}

/**
 * Normalize + route. Returns the routed request, a ProxyError to answer with, or null when nothing matched.
 */
function route (runtime: Runtime, req: IncomingMessage): Routed | ProxyError | null {
  let target = req.url ?? '/'
  // RFC 9113 §8.3.1: an HTTP/2 request carries its host in :authority.
  let hostRaw = req.headers.host ?? (req.headers[':authority'] as string | undefined)
  if (target.charCodeAt(0) !== 47 /* / */) {
    // RFC 9112 §3.2.2: in absolute-form the authority of the target replaces Host. Only configured hosts are
    // served (404 otherwise): Portico never forwards to a host of the client's choosing.
    const abs = parseAbsoluteForm(target)
    if (abs === null) return new ProxyError('PORTICO_ERR_BAD_REQUEST', 'request target must be origin-form or absolute-form')
    hostRaw = abs.authority
    target = abs.pathAndQuery
  }
  const host = hostRaw === undefined || hostRaw === '' ? (req.httpVersionMinor === 0 ? '' : null) : normalizeHost(hostRaw)
  if (host === null) return new ProxyError('PORTICO_ERR_BAD_REQUEST', 'invalid Host')
  const match = runtime.router.match(host, target)
  if (match === null) return null
  return { target, hostRaw: hostRaw ?? '', host, route: match.route, prefixLength: match.prefixLength }
}

/** The upstream request head for a routed request; INVALID_HOST when the head carries two Host fields. */
function upstreamHead (req: IncomingMessage, routed: Routed): { path: string, headers: string[] } | typeof INVALID_HOST {
  const socket = req.socket
  const r = routed.route
  const headers = buildUpstreamHeaders(req.rawHeaders, {
    clientAddress: socket?.remoteAddress,
    proto: (socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http',
    host: routed.hostRaw,
    httpVersion: req.httpVersion
  }, r.headerOptions)
  if (headers === INVALID_HOST) return headers
  const mount = mountPrefix(req)
  if (mount !== '' && r.headerOptions.xForwarded) headers.push('x-forwarded-prefix', mount)
  return { path: r.stripPrefix ? stripPrefix(routed.target, routed.prefixLength) : routed.target, headers }
}

/**
 * The prefix a framework removed before calling us (Express/Connect keep the full URL in `originalUrl`, and the
 * Fastify adapter does the same): "/google" for `app.use('/google', ...)`. Empty when not mounted.
 */
function mountPrefix (req: IncomingMessage): string {
  const original = (req as { originalUrl?: unknown }).originalUrl
  if (typeof original !== 'string' || original === req.url) return ''
  const q1 = original.indexOf('?')
  const q2 = (req.url ?? '').indexOf('?')
  const full = q1 === -1 ? original : original.slice(0, q1)
  const rest = q2 === -1 ? (req.url ?? '') : (req.url ?? '').slice(0, q2)
  if (rest === '/' || rest === '') return full.endsWith('/') && full.length > 1 ? full.slice(0, -1) : full
  return full.endsWith(rest) ? full.slice(0, full.length - rest.length) : ''
}

/**
 * Handles one request. With `next`, an unmatched request falls through to it; without, it gets 404.
 */
export function handleRequest (runtime: Runtime, ctx: ExchangeContext, req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
  const start = performance.now()
  const routed = route(runtime, req)
  if (routed === null) {
    if (next !== undefined) {
      next()
      return
    }
    rejectEarly(req, res, ctx, new ProxyError('PORTICO_ERR_NO_ROUTE'), start, req.headers.host ?? '', runtime.hooks)
    return
  }
  if (routed instanceof ProxyError) {
    rejectEarly(req, res, ctx, routed, start, req.headers.host ?? '', runtime.hooks)
    return
  }
  const exchange = new Exchange(nextRequestId(), req, res, ctx, routed.host, routed.route.name, start, runtime.hooks)
  if (routed.route.hsts !== null && (req.socket as { encrypted?: boolean } | null)?.encrypted === true) exchange.hsts = routed.route.hsts
  const hooks = runtime.hooks
  if (hooks === null || hooks.onRequest.length === 0) {
    forward(runtime, ctx, exchange, req, routed)
    return
  }
  runOnRequest(hooks, exchange, 0, () => forward(runtime, ctx, exchange, req, routed))
}

/** Runs onRequest hooks from index `i`; a hook's answer ends the exchange, otherwise `then` forwards. */
function runOnRequest (hooks: CompiledHooks, exchange: Exchange, i: number, then: () => void): void {
  for (; i < hooks.onRequest.length; i++) {
    let result
    try {
      result = hooks.onRequest[i](exchange)
    } catch (err) {
      exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'onRequest hook threw', { cause: err }))
      return
    }
    if (result !== undefined && typeof (result as Promise<unknown>).then === 'function') {
      const next = i + 1
      ;(result as Promise<HookAnswer | undefined | void>).then((answer) => {
        if (answer) exchange.sendAnswer(answer)
        else runOnRequest(hooks, exchange, next, then)
      }, (err: unknown) => exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'onRequest hook rejected', { cause: err })))
      return
    }
    if (result) {
      exchange.sendAnswer(result as HookAnswer)
      return
    }
  }
  then()
}

/** Builds the upstream request (onUpstreamRequest hooks included) and dispatches it. */
function forward (runtime: Runtime, ctx: ExchangeContext, exchange: Exchange, req: IncomingMessage, routed: Routed): void {
  if (exchange.finished) return
  const r = routed.route
  const head = upstreamHead(req, routed)
  if (head === INVALID_HOST) {
    exchange.sendError(new ProxyError('PORTICO_ERR_BAD_REQUEST', 'more than one Host header'))
    return
  }
  const hooks = runtime.hooks
  if (hooks !== null && hooks.onUpstreamRequest.length > 0) {
    const edit = { method: req.method ?? 'GET', path: head.path, headers: new HeaderList(head.headers) }
    try {
      for (const h of hooks.onUpstreamRequest) h(exchange, edit)
    } catch (err) {
      exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'onUpstreamRequest hook threw', { cause: err }))
      return
    }
    head.path = edit.path
  }

  // RFC 9113 §8.1.1: an HTTP/2 body needs no Content-Length; it ends with END_STREAM, which the head did not carry.
  const hasBody = req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') ||
    (req.httpVersionMajor >= 2 && req.headers['content-length'] === undefined &&
      (req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false)
  let body: Readable | null = hasBody ? req : null
  if (hasBody && (req.readableEnded || req.readableDidRead || (req as { _body?: unknown })._body === true)) {
    // Embedded behind a body parser: the stream is spent. Forward what the parser kept, never an empty body.
    const replay = consumedBody(req)
    if (replay === null) {
      exchange.sendError(new ProxyError('PORTICO_ERR_BODY_CONSUMED'))
      return
    }
    body = Readable.from([replay])
    replaceFraming(head.headers, replay.length)
  } else if (hasBody && runtime.maxRequestBody !== null) {
    body = limitBody(exchange, req, runtime.maxRequestBody)
    if (body === null) return
  }

  const method = req.method ?? 'GET'
  let handler: ResponseHandler = exchange
  const cache = r.cache
  if (cache !== null) {
    const scheme = (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http'
    if ((method === 'GET' || method === 'HEAD') && body === null) {
      const path = head.path
      // Edge Architecture 1.0 §2: a surrogate announces itself (appending to any downstream surrogate's list).
      if (cache.surrogateCapability !== null) head.headers.push('surrogate-capability', cache.surrogateCapability)
      cache.handle(exchange, {
        method,
        key: `GET ${scheme}://${routed.host}${routed.target}`,
        host: routed.host,
        path: routed.target,
        req: requestRecord(req.headers, routed.host),
        upstreamHeaders: head.headers
      }, (m, headers, h) => {
        // The cache may send later (a waiter going upstream alone, a background refresh): after a reload the
        // old route's pool is closed, so the request goes to the route now live for this host and path.
        let route = r
        const live = ctx.runtime?.()
        if (live !== undefined && live !== runtime) route = live.router.match(routed.host, routed.target)?.route ?? r
        route.upstream.dispatch({ method: m, path, headers, body: null }, route.dispatchOptions, h)
      })
      return
    }
    // RFC 9111 §4.4: a successful unsafe request invalidates what the cache holds for its target.
    handler = SAFE_METHODS.has(method) ? cache.marking(exchange, 'fwd=method') : cache.invalidating(exchange, scheme, routed.host, routed.target)
  }
  r.upstream.dispatch({ method, path: head.path, headers: head.headers, body }, r.dispatchOptions, handler)
}

/** RFC 9110 §9.2.1. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * Handles an `upgrade` event (WebSocket handshake): routed like a request, then tunnelled. With `next`, an
 * unmatched handshake falls through; without, it gets 404 and the socket closes.
 */
export function handleUpgrade (runtime: Runtime, ctx: ExchangeContext, req: IncomingMessage, socket: Duplex, head: Buffer, next?: NextFunction, h2?: Http2ServerResponse): void {
  const routed = route(runtime, req)
  if (routed === null && next !== undefined) {
    next()
    return
  }
  const ok = routed !== null && !(routed instanceof ProxyError) ? routed : null
  const exchange = new UpgradeExchange(nextRequestId(), req, socket, head, ctx, ok?.host ?? req.headers.host ?? '',
    ok?.route.name ?? null, ok?.route.dispatchOptions.bodyTimeout ?? 0, h2 ?? null)
  if (ok === null) {
    exchange.onError(routed instanceof ProxyError ? routed : new ProxyError('PORTICO_ERR_NO_ROUTE'))
    return
  }
  const upstreamReq = upstreamHead(req, ok)
  if (upstreamReq === INVALID_HOST) {
    exchange.onError(new ProxyError('PORTICO_ERR_BAD_REQUEST', 'more than one Host header'))
    return
  }
  if (h2 !== undefined) {
    // RFC 8441 → RFC 6455: the HTTP/1.1 handshake needs a key; the node's accept value is checked by no one
    // since the HTTP/2 client never sent a key (the stream itself is the proof of the upgrade).
    upstreamReq.headers.push('sec-websocket-key', randomBytes(16).toString('base64'))
  }
  ok.route.upstream.dispatch({
    method: h2 !== undefined ? 'GET' : req.method ?? 'GET',
    path: upstreamReq.path,
    headers: upstreamReq.headers,
    body: null,
    upgrade: String(req.headers.upgrade ?? 'websocket')
  }, ok.route.dispatchOptions, exchange)
}

/**
 * The body a parser consumed, as bytes: `req.rawBody` when the parser kept it, else the parsed `req.body`
 * re-serialised for its content type (JSON, form, text, bytes). Null when neither exists.
 */
function consumedBody (req: IncomingMessage): Buffer | null {
  const raw = (req as { rawBody?: unknown }).rawBody
  if (Buffer.isBuffer(raw)) return raw
  if (typeof raw === 'string') return Buffer.from(raw)
  const parsed = (req as { body?: unknown }).body
  if (parsed === undefined || parsed === null) return null
  if (Buffer.isBuffer(parsed)) return parsed
  if (typeof parsed === 'string') return Buffer.from(parsed)
  const type = String(req.headers['content-type'] ?? '').toLowerCase()
  if (type.includes('json')) return Buffer.from(JSON.stringify(parsed))
  if (type.startsWith('application/x-www-form-urlencoded') && typeof parsed === 'object') {
    const form = new URLSearchParams()
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (Array.isArray(v)) for (const x of v) form.append(k, String(x))
      else form.append(k, String(v))
    }
    return Buffer.from(form.toString())
  }
  return null
}

/** A replayed body has a known length: drop chunked framing and state Content-Length. */
function replaceFraming (headers: string[], length: number): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i].toLowerCase() === 'content-length') headers.splice(i, 2)
  }
  headers.push('content-length', String(length))
}

/** Answers before any exchange exists (bad request, no route) and logs the line. */
function rejectEarly (req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext, err: ProxyError, start: number, host: string, hooks: CompiledHooks | null): void {
  const exchange = new Exchange(nextRequestId(), req, res, ctx, host, null, start, hooks)
  exchange.sendError(err)
}

/**
 * RFC 9110 §15.5.14: 413 for a body over the limit. A declared Content-Length is checked up front; a chunked body
 * is counted as it streams and the exchange fails (413 if no response has started) once it passes the limit.
 * Returns the body to forward, or null when the request was already answered.
 */
function limitBody (exchange: Exchange, req: IncomingMessage, limit: number): Readable | null {
  const declared = req.headers['content-length']
  if (declared !== undefined) {
    if (Number(declared) <= limit) return req
    exchange.res.shouldKeepAlive = false
    exchange.sendError(new ProxyError('PORTICO_ERR_BODY_TOO_LARGE'))
    return null
  }
  let seen = 0
  const counter = new Transform({
    transform (chunk: Buffer, _enc, callback) {
      seen += chunk.length
      if (seen > limit) {
        exchange.res.shouldKeepAlive = false
        callback(new ProxyError('PORTICO_ERR_BODY_TOO_LARGE'))
        exchange.failRequest(new ProxyError('PORTICO_ERR_BODY_TOO_LARGE'))
        return
      }
      callback(null, chunk)
    }
  })
  req.on('error', (err) => counter.destroy(err))
  return req.pipe(counter)
}

function parseAbsoluteForm (target: string): { authority: string, pathAndQuery: string } | null {
  const m = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(target)
  if (m === null || m[1] === '' || m[1].includes('@')) return null
  const rest = m[2]
  return { authority: m[1], pathAndQuery: rest === '' ? '/' : rest.charCodeAt(0) === 63 ? `/${rest}` : rest }
}

export { sendErrorResponse }
