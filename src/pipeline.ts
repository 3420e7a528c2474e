/**
 * The request pipeline for one downstream request or upgrade handshake: normalize → route → onRequest hooks →
 * forward. Every short-circuit becomes a response through its exchange (`sendError`): 400 malformed target or Host,
 * 404 no route (or `next()` when embedded), 413 body too large, 500 a hook threw or a consumed body, and from the
 * upstream side 502/503/504. Cached routes hand GET/HEAD to the cache and wrap unsafe methods for invalidation.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { randomBytes } from 'node:crypto'
import type { Duplex, Readable } from 'node:stream'
import type { Http2ServerResponse } from 'node:http2'
import { ProxyError } from './errors.js'
import { Exchange, isEnding, type ExchangeContext } from './exchange.js'
import { UpgradeExchange } from './upgrade.js'
import { runOnRequest, runOnUpstreamRequest, type CompiledHooks } from './hooks.js'
import { normalizeHost } from './routing/host.js'
import { routingTarget, targetError, type PathError } from './routing/path.js'
import { forwardedClient } from './http/client-identity.js'
import { stripPrefix } from './routing/router.js'
import { mountPrefix } from './routing/mount.js'
import { buildUpstreamHeaders, INVALID_HOST } from './upstream/headers.js'
import type { ResponseHandler } from './upstream/types.js'
import { cacheKey } from './cache/key.js'
import { requestRecord } from './cache/vary.js'
import { nextRequestId } from './observability/request-id.js'
import { hasRequestBody, requestBody } from './request-body.js'
import type { CompiledRoute, Runtime } from './runtime.js'
import { RuleState, type RuleExchange } from './rules/route-rules.js'
import { requestStart } from './observability/channels.js'
import { propagate } from './observability/trace-context.js'

/** Called when nothing matched, in embedded mode (Express's `next`). */
export type NextFunction = (err?: unknown) => void

/** Where a request goes, after normalize and route. */
interface Routed {
  /** The target as forwarded (before stripPrefix): the original bytes, or the normalised path (paths.normalize). */
  target: string
  hostRaw: string
  host: string
  route: CompiledRoute
  prefixLength: number
}

/** Who sent a request: the socket's peer, and whether it is a trusted proxy (then `address` is the client it reported). */
interface Client {
  peer: string | undefined
  address: string | undefined
  trusted: boolean
}

/** "https" when the client connection is TLS. */
function schemeOf (req: IncomingMessage): 'http' | 'https' {
  return (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http'
}

/** The client of a request (http/client-identity.ts); with no trusted proxies, always the peer. */
function clientOf (runtime: Runtime, req: IncomingMessage): Client {
  const peer = req.socket?.remoteAddress
  const trust = runtime.trust
  if (trust === null || !trust.has(peer)) return { peer, address: peer, trusted: false }
  return { peer, address: forwardedClient(req.rawHeaders, trust)?.address ?? peer, trusted: true }
}

const PATH_ERRORS: Record<PathError, string> = {
  fragment: 'a request target has no fragment (RFC 9112 §3.2)',
  'invalid-character': 'invalid character in the request target',
  'above-root': 'the path climbs above "/"',
  'encoded-slash': 'an encoded slash or backslash in the path (paths.rejectEncodedSlash)'
}

/**
 * Normalize + route. Returns the routed request, a ProxyError to answer with, or null when nothing matched.
 */
function route (runtime: Runtime, req: IncomingMessage): Routed | ProxyError | null {
  // A request line without a version is HTTP/0.9 to Node's parser, which still reads fields after it: never served.
  if (req.httpVersionMajor === 0) return new ProxyError('PORTICO_ERR_BAD_REQUEST', 'HTTP/0.9 is not served')
  // RFC 9112 §6.1: Node decodes chunked only; another coding would reach the node undecoded and unannounced.
  const te = req.headers['transfer-encoding']
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return new ProxyError('PORTICO_ERR_UNSUPPORTED_TRANSFER_CODING')
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
  // Routing sees the normalised path (routing/path.ts): no prefix can be escaped with dot segments or encodings.
  const paths = runtime.paths
  const routing = paths.normalize === 'off' ? (targetError(target) ?? target) : routingTarget(target, paths)
  if (routing in PATH_ERRORS) return new ProxyError('PORTICO_ERR_BAD_REQUEST', PATH_ERRORS[routing as PathError])
  const match = runtime.router.match(host, routing)
  if (match === null) return null
  // The node gets the bytes the client sent (route-only), unless they must change: the normalised form when asked
  // (forward), or when a prefix is stripped from a path that normalising changed (the prefix length is the
  // normalised form's).
  const forwarded = routing === target || (paths.normalize === 'route-only' && !match.route.stripPrefix) ? target : routing
  return { target: forwarded, hostRaw: hostRaw ?? '', host, route: match.route, prefixLength: match.prefixLength }
}

/**
 * The upstream request head for a routed request, after onUpstreamRequest hooks; a ProxyError to answer with when
 * the head carries two Host fields (400) or a hook threw (500).
 */
function upstreamHead (hooks: CompiledHooks | null, tracing: Runtime['tracing'], exchange: Exchange | UpgradeExchange, req: IncomingMessage, routed: Routed, client: Client, rules: RuleState | null): { path: string, headers: string[] } | ProxyError {
  const r = routed.route
  const headers = buildUpstreamHeaders(req.rawHeaders, {
    peer: client.peer,
    clientAddress: client.address,
    trusted: client.trusted,
    proto: schemeOf(req),
    host: routed.hostRaw,
    httpVersion: req.httpVersion
  }, r.headerOptions)
  if (headers === INVALID_HOST) return new ProxyError('PORTICO_ERR_BAD_REQUEST', 'more than one Host header')
  if (tracing !== null) exchange.trace = propagate(headers, tracing)
  const mount = mountPrefix(req)
  if (mount !== '' && r.headerOptions.xForwarded) addPrefix(headers, mount)
  let path = r.stripPrefix ? stripPrefix(routed.target, routed.prefixLength) : routed.target
  if (rules !== null && rules.rules.editsUpstream) {
    const rewritten = rules.rules.upstreamPath(path, rules)
    if (rewritten instanceof ProxyError) return rewritten
    path = rewritten
    rules.rules.upstreamHeaders(headers, rules)
  }
  if (hooks !== null && hooks.onUpstreamRequest.length > 0) {
    const edited = runOnUpstreamRequest(hooks, exchange, req.method ?? 'GET', path, headers)
    if (edited instanceof ProxyError) return edited
    path = edited
  }
  return { path, headers }
}

/**
 * Handles one request. With `next`, an unmatched request falls through to it; without, it gets 404.
 */
export function handleRequest (runtime: Runtime, ctx: ExchangeContext, req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
  const start = performance.now()
  if (isEnding(req.socket)) {
    res.destroy()
    return
  }
  const routed = route(runtime, req)
  if (routed === null && next !== undefined) {
    next()
    return
  }
  const client = clientOf(runtime, req)
  if (routed === null || routed instanceof ProxyError) {
    const exchange = new Exchange(nextRequestId(), req, res, ctx, req.headers.host ?? '', null, start, runtime.hooks)
    exchange.clientAddress = client.address
    if (requestStart.hasSubscribers) requestStart.publish({ proxy: ctx, id: exchange.id, method: req.method ?? 'GET', host: exchange.host, route: null, upgrade: false })
    exchange.sendError(routed ?? new ProxyError('PORTICO_ERR_NO_ROUTE'))
    return
  }
  const exchange = new Exchange(nextRequestId(), req, res, ctx, routed.host, routed.route.name, start, runtime.hooks)
  exchange.clientAddress = client.address
  if (requestStart.hasSubscribers) requestStart.publish({ proxy: ctx, id: exchange.id, method: req.method ?? 'GET', host: routed.host, route: routed.route.name, upgrade: false })
  if (routed.route.hsts !== null && schemeOf(req) === 'https') exchange.hsts = routed.route.hsts
  exchange.via = routed.route.responseVia
  const rules = routed.route.rules
  if (rules !== null) {
    const state = ruleState(exchange, req, routed, client)
    exchange.rules = state
    if (rules.hasRequestPhase) {
      rules.request(state, () => hooksThenForward(runtime, ctx, exchange, req, routed, client))
      return
    }
  }
  hooksThenForward(runtime, ctx, exchange, req, routed, client)
}

function hooksThenForward (runtime: Runtime, ctx: ExchangeContext, exchange: Exchange, req: IncomingMessage, routed: Routed, client: Client): void {
  const hooks = runtime.hooks
  if (hooks === null || hooks.onRequest.length === 0) {
    forward(runtime, ctx, exchange, req, routed, client)
    return
  }
  runOnRequest(hooks, exchange, 0, () => forward(runtime, ctx, exchange, req, routed, client))
}

/** The rules' view of a routed request. */
function ruleState (exchange: RuleExchange, req: IncomingMessage, routed: Routed, client: Client): RuleState {
  const r = routed.route
  return new RuleState(r.rules!, {
    exchange,
    req,
    hostRaw: routed.hostRaw,
    host: routed.host,
    scheme: schemeOf(req),
    clientAddress: client.address,
    clientPrefix: mountPrefix(req) + (r.stripPrefix ? routed.target.slice(0, routed.prefixLength) : '')
  })
}

/** Builds the upstream request and dispatches it: through the cache on cached routes, else to the route's pool. */
function forward (runtime: Runtime, ctx: ExchangeContext, exchange: Exchange, req: IncomingMessage, routed: Routed, client: Client): void {
  if (exchange.finished) return
  const r = routed.route
  const upstream = r.upstream
  if (upstream === null) {
    // Only a route whose rules answer every request has no upstream; reaching here is a bug.
    exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'a route without upstream reached forwarding'))
    return
  }
  const head = upstreamHead(runtime.hooks, runtime.tracing, exchange, req, routed, client, exchange.rules)
  if (head instanceof ProxyError) {
    exchange.sendError(head)
    return
  }
  let body: Readable | null = null
  if (hasRequestBody(req)) {
    const limit = r.rules?.maxRequestBody
    body = requestBody(exchange, req, head.headers, limit === undefined ? runtime.maxRequestBody : limit, runtime.bodyTimeout)
    if (body === null) return
  }
  const method = req.method ?? 'GET'
  let handler: ResponseHandler = exchange
  const cache = r.cache
  if (cache !== null) {
    const scheme = schemeOf(req)
    if ((method === 'GET' || method === 'HEAD') && body === null) {
      const path = head.path
      // Edge Architecture 1.0 §2: a surrogate announces itself (appending to any downstream surrogate's list).
      if (cache.surrogateCapability !== null) head.headers.push('surrogate-capability', cache.surrogateCapability)
      cache.handle(exchange, {
        method,
        key: cacheKey(scheme, routed.host, routed.target),
        host: routed.host,
        path: routed.target,
        req: requestRecord(req.headers, routed.host),
        upstreamHeaders: head.headers
      }, (m, headers, h) => {
        // The cache may send later (a waiter going upstream alone, a background refresh): after a reload the
        // old route's pool is closed, so the request goes to the route now live for this host and path.
        let live = r
        const now = ctx.runtime?.()
        if (now !== undefined && now !== runtime) {
          const m2 = now.router.match(routed.host, routed.target)?.route
          if (m2?.upstream != null) live = m2
        }
        ;(live.upstream ?? upstream).dispatch({ method: m, path, headers, body: null, clientAddress: client.address, clientTls: scheme === 'https' }, live.dispatchOptions, h)
      })
      return
    }
    // RFC 9111 §4.4: a successful unsafe request invalidates what the cache holds for its target.
    handler = SAFE_METHODS.has(method) ? cache.marking(exchange, 'method') : cache.invalidating(exchange, scheme, routed.host, routed.target)
  }
  upstream.dispatch({ method, path: head.path, headers: head.headers, body, clientAddress: client.address, clientTls: schemeOf(req) === 'https' }, r.dispatchOptions, handler)
}

/** RFC 9110 §9.2.1. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * Handles an `upgrade` event (WebSocket handshake): routed like a request, through the same hooks, then tunnelled.
 * With `next`, an unmatched handshake falls through; without, it gets 404 and the socket closes. `h2` is the stream's
 * response for WebSocket over HTTP/2 (RFC 8441).
 */
export function handleUpgrade (runtime: Runtime, ctx: ExchangeContext, req: IncomingMessage, socket: Duplex, head: Buffer, next?: NextFunction, h2?: Http2ServerResponse): void {
  const routed = route(runtime, req)
  if (routed === null && next !== undefined) {
    next()
    return
  }
  const ok = routed !== null && !(routed instanceof ProxyError) ? routed : null
  const client = clientOf(runtime, req)
  const exchange = new UpgradeExchange(nextRequestId(), req, socket, head, ctx, ok?.host ?? req.headers.host ?? '',
    ok?.route.name ?? null, ok?.route.dispatchOptions.bodyTimeout ?? 0, runtime.hooks, h2 ?? null)
  exchange.clientAddress = client.address
  if (requestStart.hasSubscribers) requestStart.publish({ proxy: ctx, id: exchange.id, method: req.method ?? 'GET', host: exchange.host, route: ok?.route.name ?? null, upgrade: true })
  if (ok === null) {
    exchange.sendError(routed instanceof ProxyError ? routed : new ProxyError('PORTICO_ERR_NO_ROUTE'))
    return
  }
  const rules = ok.route.rules
  let state: RuleState | null = null
  if (rules !== null) {
    // The request rules (access, authentication, rate limits, redirects) hold for a handshake as for a request.
    state = ruleState(exchange, req, ok, client)
    if (rules.hasRequestPhase) {
      const s = state
      rules.request(s, () => upgradeHooksThenForward(runtime, exchange, req, ok, h2 !== undefined, client, s))
      return
    }
  }
  upgradeHooksThenForward(runtime, exchange, req, ok, h2 !== undefined, client, state)
}

function upgradeHooksThenForward (runtime: Runtime, exchange: UpgradeExchange, req: IncomingMessage, routed: Routed, h2: boolean, client: Client, rules: RuleState | null): void {
  const hooks = runtime.hooks
  if (hooks === null || hooks.onRequest.length === 0) {
    forwardUpgrade(runtime, exchange, req, routed, h2, client, rules)
    return
  }
  runOnRequest(hooks, exchange, 0, () => forwardUpgrade(runtime, exchange, req, routed, h2, client, rules))
}

function forwardUpgrade (runtime: Runtime, exchange: UpgradeExchange, req: IncomingMessage, routed: Routed, h2: boolean, client: Client, rules: RuleState | null): void {
  if (exchange.finished) return
  const upstream = routed.route.upstream
  if (upstream === null) {
    exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'a route without upstream reached forwarding'))
    return
  }
  const head = upstreamHead(runtime.hooks, runtime.tracing, exchange, req, routed, client, rules)
  if (head instanceof ProxyError) {
    exchange.sendError(head)
    return
  }
  if (h2) {
    // RFC 8441 → RFC 6455: the HTTP/1.1 handshake needs a key; the node's accept value is checked by no one
    // since the HTTP/2 client never sent a key (the stream itself is the proof of the upgrade).
    head.headers.push('sec-websocket-key', randomBytes(16).toString('base64'))
  }
  upstream.dispatch({
    method: h2 ? 'GET' : req.method ?? 'GET',
    path: head.path,
    headers: head.headers,
    body: null,
    upgrade: String(req.headers.upgrade ?? 'websocket'),
    clientAddress: client.address,
    clientTls: schemeOf(req) === 'https'
  }, routed.route.dispatchOptions, exchange)
}

/** X-Forwarded-Prefix for a mounted proxy: appended to a trusted proxy's own prefix, else Portico's alone. */
function addPrefix (headers: string[], mount: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].toLowerCase() === 'x-forwarded-prefix') {
      headers[i + 1] = `${headers[i + 1].replace(/\/+$/, '')}${mount}`
      return
    }
  }
  headers.push('x-forwarded-prefix', mount)
}

function parseAbsoluteForm (target: string): { authority: string, pathAndQuery: string } | null {
  const m = /^https?:\/\/([^/?#]*)(.*)$/is.exec(target)
  if (m === null || m[1] === '' || m[1].includes('@')) return null
  const rest = m[2]
  return { authority: m[1], pathAndQuery: rest === '' ? '/' : rest.charCodeAt(0) === 63 ? `/${rest}` : rest }
}
