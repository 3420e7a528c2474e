/**
 * The resolved config: what the meaning pass (resolve.ts) hands the runtime. Every default is applied, every file
 * is read, every handler is loaded, so nothing downstream of this shape parses, reads or guesses. Types only, plus
 * the brand that tells a resolved config from user options.
 *
 * Route shapes, from what users write to what serves requests: `RouteConfig` (schema.ts, as written) →
 * `ResolvedRoute` (here) → `CompiledRoute` (compile.ts, with live pools and the cache).
 */
import type { ProxyHooks } from '../hooks.js'
import type { HandlerTarget, UpstreamTls } from '../upstream/types.js'
import type { Template } from '../rules/placeholders.js'

/** One member of an upstream: a remote node or an in-process handler, with its share of traffic. */
export type MemberSpec = (
  | {
    kind: 'node'
    id: string
    origin: string
    protocol: 'http:' | 'https:'
    /** For an address of a DNS-named node: the name's authority (the Host when the route sends none) ... */
    authority?: string
    /** ... and the TLS name. */
    tlsName?: string
  }
  | { kind: 'handler', id: string, target: HandlerTarget }
) & {
  /** Relative share of traffic (> 0). */
  weight: number
  /** Most requests in flight on this member; 0 = no limit. */
  maxRequests: number
}

export interface ResolvedTimeouts { connect: number, response: number, idle: number }
export interface ResolvedHeaderOptions { xForwarded: boolean, forwarded: boolean, via: string | false }

/** The balancing policies a pool can run (balancer/policy.ts). */
export type PolicyName = 'round-robin' | 'weighted-round-robin' | 'least-requests' | 'random-two' | 'first' | 'hash'

/** What the hash policy hashes. */
export type HashKey =
  | { kind: 'client-ip' }
  | { kind: 'uri' }
  | { kind: 'header', name: string }
  | { kind: 'cookie', name: string }
  | { kind: 'query', name: string }

/** Sticky sessions by a cookie Portico sets. */
export interface ResolvedSticky {
  cookie: string
  /** Max-Age in ms, or null for a session cookie. */
  ttl: number | null
  /** null: Secure when the client connection is TLS. */
  secure: boolean | null
  httpOnly: boolean
  sameSite: 'Strict' | 'Lax' | 'None'
  path: string
  /** HMAC key for cookie values, or null for plain hashes. */
  secret: string | null
}

/** Active health checks. */
export interface ResolvedHealthCheck {
  path: string
  interval: number
  timeout: number
  unhealthyAfter: number
  healthyAfter: number
  /** Passing statuses as inclusive [low, high] ranges. */
  expectStatus: [number, number][]
  expectBody: RegExp | null
  /** Extra headers, flat [name, value, ...]. */
  headers: string[]
  /** Host header of the probe, or null for the node's own. */
  host: string | null
}

/** Passive health (outlier detection). `failTimeout` alone resolves to this with one failure and no growth. */
export interface ResolvedOutlier {
  consecutiveFailures: number
  /** Response statuses counted as failures. */
  statuses: number[]
  /** Whether resets and timeouts count (the simple form counts connection failures only). */
  countResets: boolean
  baseEjectionTime: number
  maxEjectionTime: number
  maxEjectedPercent: number
}

/** Retries. */
export interface ResolvedRetry {
  /** Most attempts per request, the first included. */
  attempts: number
  connectFailure: boolean
  reset: boolean
  timeout: boolean
  /** Response statuses that are retried (when the request may be replayed). */
  statuses: number[]
  backoff: number
  maxBackoff: number
  /** Retries in flight ≤ budget × requests in flight (a fraction), never fewer than 3. */
  budget: number
  /** Request bodies up to this many bytes are kept for replay. */
  bufferBody: number
}

export interface ResolvedUpstream {
  /** Identity of the pool across reloads: "pool:NAME" for `pools:`, "route:NAME" for an inline upstream. */
  key: string
  /** For logs and `proxy.pools()`: the pool's or the route's name. */
  name: string
  members: MemberSpec[]
  policy: PolicyName
  hashKey: HashKey | null
  sticky: ResolvedSticky | null
  healthCheck: ResolvedHealthCheck | null
  /** Null when passive health is off (failTimeout 0 and no outlier settings). */
  outlier: ResolvedOutlier | null
  retry: ResolvedRetry
  /** Most requests in flight on the pool; 0 = no limit. */
  maxRequests: number
  queue: { size: number, timeout: number }
  slowStart: number
  /** Percentage of usable members below which every member is used; 0 = off. */
  panicThreshold: number
  /** DNS refresh interval in ms for nodes named by a DNS name; 0 = off. */
  dnsRefresh: number
  connectTimeout: number
  maxConnections: number
  keepAlive: number
  /** TLS options for https:// nodes (files already read). */
  tls: UpstreamTls
  /** HTTP/2 to https:// nodes by ALPN. */
  http2: boolean
}

/** One server certificate, files resolved to absolute paths. */
export interface ResolvedCertificate {
  hosts: string[]
  certFile: string
  keyFile: string
  passphrase?: string
  default: boolean
}

/** Automatic HTTPS with the directory URL, storage path and names resolved. */
export interface ResolvedAcme {
  email: string
  directoryUrl: string
  challenges: Array<'http-01' | 'tls-alpn-01'>
  /** A directory (absolute), or Redis shared by the instances on it. */
  storage: { dir: string } | { redis: { url: string, prefix: string } }
  renewBefore: number
  /** False when renewBefore is the default, which gives way to a third of a shorter certificate's lifetime. */
  renewBeforeSet: boolean
  /** The names to manage, lower-case. */
  hosts: string[]
  /** Route hosts it cannot manage (wildcards and prefix keys need DNS-01) that no file certificate names. */
  unmanaged: string[]
  /** PEM to trust for the directory's HTTPS, or null for the system's roots. */
  ca: Buffer | null
  /** Until a name has its certificate: the default certificate, or a refused handshake. */
  pending: 'default' | 'refuse'
  /** On-demand TLS, or null. */
  onDemand: { ask: string, rate: { count: number, period: number }, maxConcurrent: number } | null
}

/** Server-side TLS. */
export interface ResolvedTls {
  certificates: ResolvedCertificate[]
  acme: ResolvedAcme | null
  minVersion: 'TLSv1.2' | 'TLSv1.3'
  ciphers?: string
  watch: boolean
}

/** Header edits in one direction, placeholders compiled; names lower-case. */
export interface ResolvedHeaderEdits {
  set: [string, Template][]
  add: [string, Template][]
  remove: string[]
}

/** What a rate limit counts by. */
export type RateKey = { kind: 'client-ip' } | { kind: 'route' } | { kind: 'header', name: string }

/** CORS with defaults applied. */
export interface ResolvedCors {
  /** Exact origins (lower-case), and patterns. */
  origins: Set<string>
  patterns: RegExp[]
  any: boolean
  methods: string
  /** Allowed request fields as sent, or null to echo what a preflight asks for ("*"). */
  headers: string | null
  exposeHeaders: string | null
  credentials: boolean
  /** Seconds, or null to send none. */
  maxAge: number | null
}

/** The traffic rules of one route (docs/rules.md), with defaults, top-level values and files resolved. */
export interface ResolvedRules {
  allow: string[] | null
  deny: string[] | null
  /** Users (parsed, hashes checked) and realm. */
  basicAuth: { users: { name: string, hash: string }[], realm: string } | null
  forwardAuth: { url: string, copyRequestHeaders: string[] | null, copyResponseHeaders: string[], timeout: number } | null
  rateLimit: {
    key: RateKey
    /** Requests per `period` ms, or null for an in-flight limit only. */
    rate: number | null
    period: number
    burst: number
    store: 'memory' | 'redis'
    redis: { url: string, prefix: string, commandTimeout: number } | null
    /** 0 = no in-flight limit. */
    maxInFlight: number
  } | null
  redirect: { to: Template, status: number, match: RegExp | null } | null
  respond: { status: number, body: Template | null, headers: [string, Template][] } | null
  addPrefix: string | null
  replacePath: string | null
  rewrite: { match: RegExp, replace: Template } | null
  requestHeaders: ResolvedHeaderEdits | null
  responseHeaders: ResolvedHeaderEdits | null
  /** Security fields set on responses that lack them ([name, value], lower-case names), and HSTS for TLS. */
  securityHeaders: { fields: [string, string][], hsts: string | null } | null
  cors: ResolvedCors | null
  rewriteRedirects: boolean
  rewriteCookies: boolean
  compress: { encodings: ('zstd' | 'br' | 'gzip' | 'deflate')[], minSize: number, types: string[] } | null
  /** Pages by status ("502") or class ("5xx"). */
  errorPages: { pages: Map<string, { body: Buffer, type: string }>, intercept: boolean } | null
  /** This route's body limit; undefined: the top-level one. */
  maxRequestBody: number | undefined
}

export interface ResolvedRoute {
  /** Stable name for logs: "host+path". */
  name: string
  hosts: string[]
  path: string
  stripPrefix: boolean
  preserveHost: boolean
  /** Null when the route answers every request itself (respond, or redirect without match). */
  upstream: ResolvedUpstream | null
  timeouts: ResolvedTimeouts
  headers: ResolvedHeaderOptions
  /** The Strict-Transport-Security value for responses over TLS, or null. */
  hsts: string | null
  /** Responses on this route go through the proxy cache (config.cache is then set). */
  cache: boolean
  /** Null when the route has no traffic rules: then no rule code runs. */
  rules: ResolvedRules | null
}

/** The proxy cache settings with defaults applied (docs/cache.md). */
export interface ResolvedCache {
  store: 'memory' | 'redis'
  maxSize: number
  maxObjectSize: number
  heuristicFraction: number
  retainStale: number
  collapseTimeout: number
  /** Lower-case targeted field names, in order of precedence. */
  targetedFields: string[]
  name: string
  /** The device token this cache announces in Surrogate-Capability and answers to in Surrogate-Control targets. */
  surrogateToken: string
  redis: { url: string, prefix: string, chunkSize: number, commandTimeout: number } | null
}

export interface ResolvedAdmin {
  host: string
  port: number
  /** The bearer token (read from tokenEnv at load), or null. */
  token: string | null
  /** Prometheus metrics on GET /metrics. */
  metrics: boolean
}

export interface ResolvedListener {
  host: string
  port: number
  tls: boolean
  http2: boolean
  /** false, or the https port to redirect to (true in the config means 443). */
  redirectToHttps: number | false
  /** Most open connections; 0 = no limit. */
  maxConnections: number
  /** Most open connections per client address; 0 = no limit. */
  maxConnectionsPerIp: number
  /** listen(2) backlog. */
  backlog: number
}

/** Path normalisation for routing (routing/path.ts). */
export interface ResolvedPaths {
  normalize: 'route-only' | 'forward' | 'off'
  rejectEncodedSlash: boolean
  mergeSlashes: boolean
}

/** Client-side (downstream) limits and shutdown. */
export interface ResolvedServer {
  drainTimeout: number
  keepAliveTimeout: number
  headersTimeout: number
  requestTimeout: number
  /** Longest pause in a request body (ms); 0 = none. */
  bodyTimeout: number
  maxHeaderSize: number
}

/** Brands a resolved config (kept by object spread, unlike a WeakSet entry), so APIs taking either form can tell. */
export const RESOLVED: unique symbol = Symbol.for('portico.resolvedConfig')

export interface ResolvedConfig {
  readonly [RESOLVED]: true
  listen: ResolvedListener[]
  /** The config said no `listen` (the default applies): a reload with it keeps the listeners that are open. */
  listenDefaulted: boolean
  routes: ResolvedRoute[]
  server: ResolvedServer
  limits: { maxRequestBody: number | null }
  /** Peers whose forwarding fields are believed (entries as configured; http/client-identity.ts). */
  trustedProxies: string[]
  paths: ResolvedPaths
  log: { level: string, access: boolean, format: 'json' | 'combined' }
  /** W3C Trace Context, or null when off (traceparent then passes as any field). */
  tracing: { start: boolean, sampled: boolean } | null
  hooks: ProxyHooks | ProxyHooks[] | undefined
  tls: ResolvedTls | null
  /** The proxy cache, when any route uses it. */
  cache: ResolvedCache | null
  admin: ResolvedAdmin | null
  /** Reload when the config file changes (CLI). */
  watch: boolean
  /** Worker processes (CLI): a number, or "auto" for one per core. */
  workers: number | 'auto'
}

/** A problem found by the meaning pass, at a key path of the input object. */
export interface ConfigIssue { path: (string | number)[], message: string, value?: unknown }

/** True for a config produced by `resolveConfig` (or a spread copy of one), false for user options. */
export function isResolvedConfig (c: unknown): c is ResolvedConfig {
  return typeof c === 'object' && c !== null && (c as { [RESOLVED]?: unknown })[RESOLVED] === true
}
