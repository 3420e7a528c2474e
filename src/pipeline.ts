/**
 * The request pipeline for one downstream request: normalize → route → forward → respond. This is the one place
 * where a failure becomes a response; phases short-circuit as ARCHITECTURE.md lists (400 malformed, 404 no route,
 * 413 too large, 502/503/504 from the upstream side).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { randomBytes } from 'node:crypto'
import { Transform, type Readable } from 'node:stream'
import { ProxyError } from './errors.js'
import { Exchange, sendErrorResponse, type ExchangeContext } from './exchange.js'
import { normalizeHost } from './routing/host.js'
import { stripPrefix, type Router } from './routing/router.js'
import { buildUpstreamHeaders, INVALID_HOST, type RequestHeaderOptions } from './upstream/headers.js'
import type { DispatchOptions, Upstream } from './upstream/types.js'

/** A route ready to serve: the resolved route plus its live upstream and precomputed options. */
export interface CompiledRoute {
  name: string
  hosts: readonly string[]
  path: string
  stripPrefix: boolean
  upstream: Upstream
  headerOptions: RequestHeaderOptions
  dispatchOptions: DispatchOptions
}

/** Everything a request needs, swapped whole on reload. */
export interface Runtime {
  router: Router<CompiledRoute>
  maxRequestBody: number | null
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

/**
 * Handles one request. With `next`, an unmatched request falls through to it; without, it gets 404.
 */
export function handleRequest (runtime: Runtime, ctx: ExchangeContext, req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
  const start = performance.now()
  let target = req.url ?? '/'
  let hostRaw = req.headers.host
  if (target.charCodeAt(0) !== 47 /* / */) {
    // RFC 9112 §3.2.2: in absolute-form the authority of the target replaces Host. Only configured hosts are
    // served (404 otherwise): Portico never forwards to a host of the client's choosing.
    const abs = parseAbsoluteForm(target)
    if (abs === null) {
      rejectEarly(req, res, ctx, new ProxyError('PORTICO_ERR_BAD_REQUEST', 'request target must be origin-form or absolute-form'), start, hostRaw ?? '')
      return
    }
    hostRaw = abs.authority
    target = abs.pathAndQuery
  }
  const host = hostRaw === undefined || hostRaw === '' ? (req.httpVersionMinor === 0 ? '' : null) : normalizeHost(hostRaw)
  if (host === null) {
    rejectEarly(req, res, ctx, new ProxyError('PORTICO_ERR_BAD_REQUEST', 'invalid Host'), start, hostRaw ?? '')
    return
  }
  const match = runtime.router.match(host, target)
  if (match === null) {
    if (next !== undefined) {
      next()
      return
    }
    rejectEarly(req, res, ctx, new ProxyError('PORTICO_ERR_NO_ROUTE'), start, host)
    return
  }
  const route = match.route
  const exchange = new Exchange(nextRequestId(), req, res, ctx, host, route.name, start)

  const socket = req.socket
  const headers = buildUpstreamHeaders(req.rawHeaders, {
    clientAddress: socket?.remoteAddress,
    proto: (socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http',
    host: hostRaw ?? '',
    httpVersion: req.httpVersion
  }, route.headerOptions)
  if (headers === INVALID_HOST) {
    exchange.sendError(new ProxyError('PORTICO_ERR_BAD_REQUEST', 'more than one Host header'))
    return
  }

  const hasBody = req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
  let body: Readable | null = hasBody ? req : null
  if (hasBody && runtime.maxRequestBody !== null) {
    body = limitBody(exchange, req, runtime.maxRequestBody)
    if (body === null) return
  }

  route.upstream.dispatch({
    method: req.method ?? 'GET',
    path: route.stripPrefix ? stripPrefix(target, match.prefixLength) : target,
    headers,
    body
  }, route.dispatchOptions, exchange)
}

/** Answers before any exchange exists (bad request, no route) and logs the line. */
function rejectEarly (req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext, err: ProxyError, start: number, host: string): void {
  const exchange = new Exchange(nextRequestId(), req, res, ctx, host, null, start)
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
