/**
 * A route's traffic rules, compiled once per config (docs/rules.md), and the per-request state they keep. A route
 * without rules has none of this (`CompiledRoute.rules` is null) and runs no rule code.
 *
 * The documented order:
 * 1. request: deny/allow (403) → basicAuth (401) → forwardAuth → rateLimit (429) → redirect / respond;
 *    then the onRequest hooks;
 * 2. upstream request: path rewrites (after stripPrefix: replacePath or rewrite, then addPrefix) → header edits;
 *    then the onUpstreamRequest hooks;
 * 3. response (after the onUpstreamResponse hooks): redirect and cookie rewriting → header edits → security
 *    headers → CORS → RateLimit fields → error pages (intercept) → compression.
 * Portico's own error answers take the route's error pages.
 */
import type { IncomingMessage } from 'node:http'
import type { ResolvedRoute, ResolvedRules } from '../config/resolved.js'
import { ProxyError } from '../errors.js'
import type { ErrorPage } from '../error-response.js'
import type { HookAnswer } from '../hooks.js'
import { AddressSet } from '../http/address-set.js'
import { addVary, fieldValue } from '../http/fields.js'
import type { Logger } from '../observability/logger.js'
import { BasicAuth } from './basic-auth.js'
import { compressHeaders, compressible, negotiate, type CompressSpec, type Encoding } from './compress.js'
import { allowedOrigin, corsResponse, isPreflight, preflightAnswer } from './cors.js'
import { applyHeaderEdits } from './header-edits.js'
import { askForwardAuth } from './forward-auth.js'
import { rewriteResponse, type Views } from './location.js'
import type { PlaceholderContext } from './placeholders.js'
import { rateLimitFields, type InFlightLimiter, type RateDecision, type RateLimitSpec, type RateStore } from './rate-limit.js'
import type { RuleResources } from './resources.js'

/** What the rules need of an exchange. */
export interface RuleExchange {
  readonly id: string
  readonly finished: boolean
  sendAnswer: (answer: HookAnswer) => void
  sendError: (err: ProxyError) => void
  /** Runs `fn` once when the exchange ends, however it ends. */
  onFinished: (fn: () => void) => void
}

/** The request as the rules see it (built by the pipeline once a route with rules matched). */
export interface RuleRequest {
  exchange: RuleExchange
  req: IncomingMessage
  /** Host as the client sent it (with port), and normalised (without). */
  hostRaw: string
  host: string
  scheme: 'http' | 'https'
  clientAddress: string | undefined
  /** What the client's path has in front of the node's: the stripped prefix and a mount prefix. */
  clientPrefix: string
}

/** What the response phase decided. */
export interface ResponseOutcome {
  /** Compress the body with this coding (the head is already edited). */
  encoding: Encoding | null
  /** Replace the node's error body with this page (errorPages with intercept). */
  page: ErrorPage | null
}

const NO_OUTCOME: ResponseOutcome = { encoding: null, page: null }

/** Response fields kept when an error page replaces a node's body. */
const KEPT_ON_INTERCEPT = new Set(['www-authenticate', 'retry-after', 'allow', 'proxy-status', 'set-cookie', 'via', 'cache-status', 'date'])

/** One request's rule state: placeholders evaluated once, the rate-limit fields for the response. */
export class RuleState {
  readonly rules: RouteRules
  readonly request: RuleRequest
  #ctx: PlaceholderContext | null = null
  /** RateLimit fields for the response. */
  rateFields: string[] | null = null
  /** Fields an auth service asked to copy onto the upstream request. */
  authFields: string[] | null = null

  constructor (rules: RouteRules, request: RuleRequest) {
    this.rules = rules
    this.request = request
  }

  /** The placeholder context (placeholders.ts), built on first use. */
  context (groups: readonly (string | undefined)[] | null = null): PlaceholderContext {
    if (groups !== null) return { ...this.context(), groups }
    if (this.#ctx === null) {
      const x = this.request
      const socket = x.req.socket as { servername?: unknown } | null
      this.#ctx = {
        clientIp: x.clientAddress ?? '',
        host: x.hostRaw,
        hostname: x.host,
        method: x.req.method ?? 'GET',
        uri: uriOf(x.req),
        scheme: x.scheme,
        id: x.exchange.id,
        sni: typeof socket?.servername === 'string' ? socket.servername : '',
        route: this.rules.name,
        groups: null
      }
    }
    return this.#ctx
  }
}

/** A valid origin-form target after rewriting: starts with "/", printable ASCII only (RFC 3986), no fragment. */
function validTarget (t: string): boolean {
  if (t.charCodeAt(0) !== 47) return false
  for (let i = 1; i < t.length; i++) {
    const c = t.charCodeAt(i)
    if (c <= 32 || c >= 127 || c === 35) return false
  }
  return true
}

export class RouteRules {
  readonly name: string
  readonly #r: ResolvedRules
  readonly #allow: AddressSet | null
  readonly #deny: AddressSet | null
  readonly #basic: BasicAuth | null
  readonly #rate: { store: RateStore | null, spec: RateLimitSpec | null, inFlight: InFlightLimiter | null } | null
  readonly #resources: RuleResources
  readonly #logger: Logger
  /** Node origins and hosts, for redirect and cookie rewriting. */
  readonly #nodeOrigins: string[]
  readonly #nodeHosts: string[]
  /** Whether the request phase has anything to do (else `request` calls `next` at once). */
  readonly hasRequestPhase: boolean
  /** Whether the upstream request is edited (path or fields). */
  readonly editsUpstream: boolean
  /** Whether the response phase has anything to do. */
  readonly hasResponsePhase: boolean
  /** This route's body limit; undefined: the top-level one. */
  readonly maxRequestBody: number | undefined
  readonly #compress: CompressSpec | null

  constructor (r: ResolvedRules, route: ResolvedRoute, resources: RuleResources, logger: Logger) {
    this.name = route.name
    this.#r = r
    this.#resources = resources
    this.#logger = logger
    this.#allow = r.allow === null ? null : new AddressSet(r.allow)
    this.#deny = r.deny === null ? null : new AddressSet(r.deny)
    this.#basic = r.basicAuth === null ? null : new BasicAuth(r.basicAuth.users, { realm: r.basicAuth.realm })
    const rl = r.rateLimit
    this.#rate = rl === null
      ? null
      : {
          store: rl.rate === null ? null : rl.store === 'redis' && rl.redis !== null ? resources.redisStore(rl.redis.url, rl.redis.prefix, rl.redis.commandTimeout) : resources.memoryStore(route.name),
          spec: rl.rate === null ? null : { rate: rl.rate, period: rl.period, burst: rl.burst, name: 'default' },
          inFlight: rl.maxInFlight > 0 ? resources.inFlight(route.name, rl.maxInFlight) : null
        }
    const members = route.upstream?.members ?? []
    this.#nodeOrigins = members.flatMap((m) => m.kind === 'node' ? [m.origin.toLowerCase(), ...(m.authority !== undefined ? [`${m.protocol}//${m.authority}`.toLowerCase()] : [])] : [])
    this.#nodeHosts = this.#nodeOrigins.map((o) => new URL(o).hostname.replace(/^\[|\]$/g, ''))
    this.#compress = r.compress
    this.maxRequestBody = r.maxRequestBody
    this.hasRequestPhase = r.allow !== null || r.deny !== null || r.basicAuth !== null || r.forwardAuth !== null ||
      r.rateLimit !== null || r.redirect !== null || r.respond !== null || r.cors !== null
    this.editsUpstream = r.addPrefix !== null || r.replacePath !== null || r.rewrite !== null || r.requestHeaders !== null || r.forwardAuth !== null
    this.hasResponsePhase = r.rewriteRedirects || r.rewriteCookies || r.responseHeaders !== null || r.securityHeaders !== null ||
      r.cors !== null || r.rateLimit !== null || r.errorPages?.intercept === true || r.compress !== null
  }

  // --- request phase ---------------------------------------------------------------------------------------

  /** Runs the request phase; calls `next` when the request goes on (synchronously when no rule waits). */
  request (s: RuleState, next: () => void): void {
    const r = this.#r
    const x = s.request
    if (this.#deny !== null || this.#allow !== null) {
      const a = x.clientAddress
      if ((this.#deny !== null && this.#deny.has(a)) || (this.#allow !== null && !this.#allow.has(a))) {
        x.exchange.sendError(new ProxyError('PORTICO_ERR_FORBIDDEN'))
        return
      }
    }
    // A CORS preflight carries no credentials (Fetch §4.8): it is answered before authentication.
    if (r.cors !== null && isPreflight(x.req.method ?? 'GET', x.req.headers)) {
      x.exchange.sendAnswer(preflightAnswer(r.cors, x.req.headers))
      return
    }
    if (this.#basic !== null) {
      const basic = this.#basic
      basic.check(x.req.headers.authorization).then((user) => {
        if (x.exchange.finished) return
        if (user === 'malformed') {
          x.exchange.sendError(new ProxyError('PORTICO_ERR_BAD_REQUEST', 'malformed Authorization field'))
        } else if (user === null) {
          const err = new ProxyError('PORTICO_ERR_UNAUTHORIZED')
          err.fields = ['www-authenticate', basic.challenge]
          x.exchange.sendError(err)
        } else {
          this.#afterBasic(s, next)
        }
      }, (err: unknown) => x.exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'basicAuth failed', { cause: err })))
      return
    }
    this.#afterBasic(s, next)
  }

  #afterBasic (s: RuleState, next: () => void): void {
    const spec = this.#r.forwardAuth
    if (spec === null) {
      this.#afterAuth(s, next)
      return
    }
    const x = s.request
    askForwardAuth(spec, this.#resources.authDispatcher, {
      method: x.req.method ?? 'GET',
      uri: uriOf(x.req),
      proto: x.scheme,
      host: x.hostRaw,
      clientAddress: x.clientAddress,
      rawHeaders: x.req.rawHeaders
    }).then((verdict) => {
      if (x.exchange.finished) return
      if (verdict.allow) {
        s.authFields = verdict.fields
        this.#afterAuth(s, next)
        return
      }
      const headers: Record<string, string | string[]> = {}
      for (let i = 0; i < verdict.headers.length; i += 2) {
        const n = verdict.headers[i]
        const prior = headers[n]
        headers[n] = prior === undefined ? verdict.headers[i + 1] : [...(Array.isArray(prior) ? prior : [prior]), verdict.headers[i + 1]]
      }
      x.exchange.sendAnswer({ status: verdict.status, headers, body: verdict.body })
    }, (err: unknown) => {
      if (x.exchange.finished) return
      this.#logger.warn({ reqId: x.exchange.id, err, url: spec.url }, 'forwardAuth: the auth service could not be asked')
      x.exchange.sendError(new ProxyError('PORTICO_ERR_FORWARD_AUTH', undefined, { cause: err }))
    })
  }

  #afterAuth (s: RuleState, next: () => void): void {
    const rate = this.#rate
    if (rate === null) {
      this.#answer(s, next)
      return
    }
    const x = s.request
    const key = this.#rateKey(s)
    if (rate.inFlight !== null) {
      const limiter = rate.inFlight
      if (!limiter.acquire(key)) {
        const err = new ProxyError('PORTICO_ERR_RATE_LIMITED', 'too many requests in flight (rateLimit.maxInFlight)')
        err.retryAfter = 1
        x.exchange.sendError(err)
        return
      }
      x.exchange.onFinished(() => limiter.release(key))
    }
    if (rate.store === null || rate.spec === null) {
      this.#answer(s, next)
      return
    }
    const spec = rate.spec
    const decided = (d: RateDecision): void => {
      if (x.exchange.finished) return
      const fields = rateLimitFields(spec, d)
      if (!d.allowed) {
        const err = new ProxyError('PORTICO_ERR_RATE_LIMITED')
        err.fields = fields
        x.exchange.sendError(err)
        return
      }
      s.rateFields = fields
      this.#answer(s, next)
    }
    const d = rate.store.take(key, spec)
    if (d instanceof Promise) d.then(decided, (err: unknown) => x.exchange.sendError(new ProxyError('PORTICO_ERR_INTERNAL', 'rateLimit failed', { cause: err })))
    else decided(d)
  }

  #rateKey (s: RuleState): string {
    // The route's name first: routes sharing a Redis keep their own buckets.
    const k = this.#r.rateLimit!.key
    const x = s.request
    if (k.kind === 'route') return `${this.name} route`
    if (k.kind === 'header') {
      const v = x.req.headers[k.name]
      // A request without the field is counted by its client address.
      if (v !== undefined) return `${this.name} h ${Array.isArray(v) ? v.join(', ') : v}`
    }
    return `${this.name} ip ${x.clientAddress ?? ''}`
  }

  /** redirect / respond, or on to the node. */
  #answer (s: RuleState, next: () => void): void {
    const r = this.#r
    const x = s.request
    if (r.redirect !== null) {
      let groups: RegExpExecArray | null = null
      if (r.redirect.match !== null) {
        groups = r.redirect.match.exec(pathOf(uriOf(x.req)))
        if (groups === null) {
          this.#respondOrNext(s, next)
          return
        }
      }
      const to = r.redirect.to.literal ?? r.redirect.to.render(s.context(groups))
      if (/[\r\n\0]/.test(to)) {
        x.exchange.sendError(new ProxyError('PORTICO_ERR_BAD_REQUEST', 'the redirect target would hold a control character'))
        return
      }
      x.exchange.sendAnswer({ status: r.redirect.status, headers: { location: to, 'content-length': '0' } })
      return
    }
    this.#respondOrNext(s, next)
  }

  #respondOrNext (s: RuleState, next: () => void): void {
    const r = this.#r.respond
    if (r === null) {
      next()
      return
    }
    const headers: Record<string, string> = {}
    for (const [name, t] of r.headers) {
      const v = t.literal ?? t.render(s.context())
      if (v !== '' && !/[\r\n\0]/.test(v)) headers[name] = v
    }
    const body = r.body === null ? undefined : Buffer.from(r.body.literal ?? r.body.render(s.context()))
    if (body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'text/plain; charset=utf-8'
    s.request.exchange.sendAnswer({ status: r.status, headers, body: body ?? Buffer.alloc(0) })
  }

  // --- upstream request ------------------------------------------------------------------------------------

  /** The path sent to the node after the rewrites; a ProxyError (400) when the result is not a valid target. */
  upstreamPath (path: string, s: RuleState): string | ProxyError {
    const r = this.#r
    let out = path
    if (r.replacePath !== null || r.rewrite !== null) {
      const q = out.indexOf('?')
      const p = q === -1 ? out : out.slice(0, q)
      const query = q === -1 ? '' : out.slice(q)
      if (r.replacePath !== null) {
        out = r.replacePath + query
      } else {
        const rw = r.rewrite!
        const m = rw.match.exec(p)
        if (m !== null) {
          const replaced = p.slice(0, m.index) + (rw.replace.literal ?? rw.replace.render(s.context(m))) + p.slice(m.index + m[0].length)
          // The replacement's own query wins; else the request's is kept.
          out = replaced.includes('?') ? replaced : replaced + query
        }
      }
    }
    if (r.addPrefix !== null) out = r.addPrefix + out
    if (out !== path && !validTarget(out)) return new ProxyError('PORTICO_ERR_BAD_REQUEST', 'the rewritten path is not a valid request target')
    return out
  }

  /** Edits the upstream request's fields (forwardAuth's copied fields, then `headers.request`). */
  upstreamHeaders (headers: string[], s: RuleState): void {
    const auth = s.authFields
    if (auth !== null && auth.length > 0) {
      const names = new Set<string>()
      for (let i = 0; i < auth.length; i += 2) names.add(auth[i])
      for (let i = headers.length - 2; i >= 0; i -= 2) if (names.has(headers[i].toLowerCase())) headers.splice(i, 2)
      headers.push(...auth)
    }
    const edits = this.#r.requestHeaders
    if (edits !== null) applyHeaderEdits(headers, edits, () => s.context())
  }

  // --- response ---------------------------------------------------------------------------------------------

  /** Runs the response phase on a node's response head (edited in place). */
  response (s: RuleState, status: number, headers: string[]): ResponseOutcome {
    const r = this.#r
    const x = s.request
    if (r.rewriteRedirects || r.rewriteCookies) rewriteResponse(headers, this.#views(s), r.rewriteRedirects, r.rewriteCookies)
    if (r.responseHeaders !== null) applyHeaderEdits(headers, r.responseHeaders, () => s.context())
    if (r.securityHeaders !== null) {
      for (const [name, value] of r.securityHeaders.fields) if (fieldValue(headers, name) === undefined) headers.push(name, value)
    }
    if (r.cors !== null) corsResponse(r.cors, x.req.headers.origin, headers)
    if (s.rateFields !== null) headers.push(...s.rateFields)
    if (r.errorPages !== null && r.errorPages.intercept && status >= 400) {
      const page = this.errorPage(status)
      if (page !== null) {
        for (let i = headers.length - 2; i >= 0; i -= 2) if (!KEPT_ON_INTERCEPT.has(headers[i].toLowerCase())) headers.splice(i, 2)
        return { encoding: null, page }
      }
    }
    const spec = this.#compress
    if (spec !== null && status === 304) {
      // A 304 carries the ETag the 200 would have: weak when the client validated the weak one a compressed 200 gave it.
      const inm = x.req.headers['if-none-match']
      if (typeof inm === 'string' && inm.includes('W/"')) weakenETag(headers, inm)
      return NO_OUTCOME
    }
    if (spec !== null && compressible(status, headers, spec)) {
      const encoding = negotiate(x.req.headers['accept-encoding'], spec)
      if (encoding === null) {
        // Another client would get it compressed: caches must keep the two apart.
        addVary(headers, 'Accept-Encoding')
        return NO_OUTCOME
      }
      compressHeaders(headers, encoding)
      return { encoding, page: null }
    }
    return NO_OUTCOME
  }

  /** The page for `status` ("502", then "5xx"), or null. */
  errorPage (status: number): ErrorPage | null {
    const pages = this.#r.errorPages?.pages
    if (pages === undefined) return null
    return pages.get(String(status)) ?? pages.get(`${Math.floor(status / 100)}xx`) ?? null
  }

  /** Whether this route has CORS (Portico's own answers then carry the fields too). */
  corsOrigin (s: RuleState): string | null {
    const c = this.#r.cors
    return c === null ? null : allowedOrigin(c, s.request.req.headers.origin)
  }

  #views (s: RuleState): Views {
    const x = s.request
    const r = this.#r
    return {
      clientOrigin: `${x.scheme}://${x.hostRaw}`,
      clientHost: x.host,
      clientPrefix: x.clientPrefix,
      // A path replaced or rewritten has no inverse: only addPrefix maps back.
      nodePrefix: r.replacePath !== null || r.rewrite !== null ? x.clientPrefix : r.addPrefix ?? '',
      nodeOrigins: this.#nodeOrigins,
      nodeHosts: this.#nodeHosts
    }
  }
}

/** The target as the client sent it: under a framework mount, Express's originalUrl (req.url lacks the mount). */
function uriOf (req: IncomingMessage): string {
  return (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/'
}

/** The path of a target, without the query. */
function pathOf (target: string): string {
  const q = target.indexOf('?')
  return q === -1 ? target : target.slice(0, q)
}

/** Makes a strong ETag weak (W/"...") when the client's If-None-Match holds the weak form. */
function weakenETag (headers: string[], ifNoneMatch: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    const v = headers[i + 1]
    if (headers[i].length === 4 && headers[i].toLowerCase() === 'etag' && v.startsWith('"') && ifNoneMatch.includes(`W/${v}`)) headers[i + 1] = `W/${v}`
  }
}
