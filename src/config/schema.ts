/**
 * The one config schema (zod). It is the source of the TypeScript types (`PorticoConfig` for what users
 * write, `ParsedConfig` for what the loader hands on), of the keys docs/config.md documents and of every validation
 * message. Shape only: whether referenced handler modules exist and whether two routes claim the same host + path is
 * checked by `resolve.ts`, the second pass. Default values are not repeated here: defaults.ts holds them.
 */
import { Server } from 'node:http'
import { z } from 'zod'
import { duration, size, token } from './schema-units.js'
import { headerRules, routeRules, sharedRules, rate } from './rules-schema.js'
import type { ProxyHooks } from '../hooks.js'
import { isAddressEntry } from '../http/address-set.js'

const HOOK_NAMES = ['onRequest', 'onUpstreamRequest', 'onUpstreamResponse', 'onError', 'onResponse']
function isHookObject (v: unknown): boolean {
  return typeof v === 'object' && v !== null && Object.entries(v).every(([k, f]) => HOOK_NAMES.includes(k) && (f === undefined || typeof f === 'function'))
}

/** A remote node: an absolute http(s) URL naming an origin, with no path, query or credentials. */
const nodeUrl = z.string({ error: 'expected a node URL such as "http://127.0.0.1:4000"' }).superRefine((v, ctx) => {
  let url: URL
  try {
    url = new URL(v)
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a node URL such as "http://127.0.0.1:4000"', input: v })
    return
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// node URL', input: v })
  } else if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    ctx.addIssue({ code: 'custom', message: 'a node URL names an origin only (no path or query); use stripPrefix or a route path instead', input: v })
  } else if (url.username !== '' || url.password !== '') {
    ctx.addIssue({ code: 'custom', message: 'a node URL may not carry credentials', input: v })
  }
})

/** A request listener `(req, res) => void`, an Express/Connect app, or a module path `./app.mjs[#export]`. */
const handlerRef = z.union([
  z.string().min(1),
  z.custom<(...args: any[]) => unknown>((v) => typeof v === 'function'),
  z.custom<{ fetch: (...args: any[]) => unknown }>((v) => typeof v === 'object' && v !== null && typeof (v as { fetch?: unknown }).fetch === 'function'),
  z.custom<Server>((v) => v instanceof Server),
  // Fastify instances and Koa apps; how each is run is upstream/handler-target.ts's to say.
  z.custom<object>((v) => typeof v === 'object' && v !== null && (typeof (v as { routing?: unknown }).routing === 'function' || typeof (v as { callback?: unknown }).callback === 'function'))
], { error: 'expected a handler: a module path like "./apps/status.mjs", a (req, res) => void function, an object with fetch() or an http.Server' })

const timeouts = z.strictObject({
  /** Time to establish a connection (TCP, and TLS for https nodes). */
  connect: duration.optional(),
  /** Time from sending the request to the response head. */
  response: duration.optional(),
  /** Longest gap between two chunks of the response body. */
  idle: duration.optional()
})

/** A node's share of traffic relative to the others of its pool (default 1). */
const weight = z.number({ error: 'expected a weight: a number greater than 0' }).positive('expected a weight greater than 0').max(1_000_000, 'expected a weight of at most 1000000')
/** Most requests one node serves at once; beyond it the pool queues (`queue`) or answers 503. */
const maxRequests = z.number().int().positive('expected a whole number greater than 0')

/** One member of a node list: a URL, `{ url, weight }`, or an in-process handler (with a weight). */
const member = z.union([
  nodeUrl,
  z.strictObject({ url: nodeUrl, weight: weight.optional(), maxRequests: maxRequests.optional() }),
  z.strictObject({ handler: handlerRef, weight: weight.optional(), maxRequests: maxRequests.optional() })
], {
  error: 'expected a node URL such as "http://127.0.0.1:4000", { url, weight } or { handler: ... }'
})

/** What a consistent hash is computed over (docs/balancing.md). */
const hashKey = z.string().regex(/^(client-ip|uri|(header|cookie):[!#$%&'*+\-.^_`|~0-9A-Za-z]+|query:[^&=#\s]+)$/,
  'expected client-ip, uri, header:NAME, cookie:NAME or query:NAME')

/** A status list such as "200-399", "200,204" or 200. */
const statusRanges = z.union([
  z.number().int().min(100).max(599),
  z.string().regex(/^\s*[1-5]\d\d(\s*-\s*[1-5]\d\d)?(\s*,\s*[1-5]\d\d(\s*-\s*[1-5]\d\d)?)*\s*$/, 'expected statuses such as "200-399" or "200,204"')
], { error: 'expected statuses such as "200-399" or "200,204"' })

const regexSource = z.string().superRefine((v, ctx) => {
  try {
    RegExp(v)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `expected a regular expression: ${(err as Error).message}`, input: v })
  }
})

/** Active health checks (docs/balancing.md). */
const healthCheck = z.strictObject({
  /** The path probed on every node. */
  path: z.string().startsWith('/', 'expected a path starting with "/"'),
  /** Time between two probes of a node (each with up to 10% jitter). */
  interval: duration.optional(),
  /** A probe without a complete answer within this time fails. */
  timeout: duration.optional(),
  /** Consecutive failed probes that mark a healthy node unhealthy. */
  unhealthyAfter: z.number().int().positive().optional(),
  /** Consecutive passed probes that mark an unhealthy node healthy. */
  healthyAfter: z.number().int().positive().optional(),
  /** Statuses that pass. */
  expectStatus: statusRanges.optional(),
  /** A regular expression the body must match (the first 64 KiB are read). */
  expectBody: regexSource.optional(),
  /** Extra request headers of the probe. */
  headers: z.record(z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a header name'), z.string()).optional(),
  /** The Host of the probe (default: the node's own host and port). */
  host: z.string().min(1).optional()
})

/** Passive health, as Envoy's outlier detection (docs/balancing.md). */
const outlier = z.strictObject({
  /** Consecutive failures (connect errors, resets, timeouts, `statuses`) that eject a node. */
  consecutiveFailures: z.number().int().positive().optional(),
  /** Response statuses that count as failures, e.g. [500, 502, 503, 504]. */
  statuses: z.array(z.number().int().min(500).max(599)).optional(),
  /** Ejection time of a first ejection; each further one lasts this times the number of ejections. */
  baseEjectionTime: duration.optional(),
  /** Longest ejection. */
  maxEjectionTime: duration.optional(),
  /** Most of a pool ever ejected at once, in percent (one node of two or more always can be). */
  maxEjectedPercent: z.number().min(0).max(100).optional()
})

const retryCondition = z.union([z.enum(['connect-failure', 'reset', 'timeout']), z.number().int().min(500).max(599)], {
  error: 'expected connect-failure, reset, timeout or a 5xx status'
})

/** A percentage: 20 or "20%". */
const percent = z.union([
  z.number().min(0).max(100),
  z.string().regex(/^\s*\d+(\.\d+)?\s*%\s*$/, 'expected a percentage such as "20%"').transform((s) => Number(s.trim().slice(0, -1).trim()))
], { error: 'expected a percentage such as "20%"' })

/** Retries (docs/balancing.md). */
const retry = z.strictObject({
  /** Most attempts per request, the first included (1 turns retries off). */
  attempts: z.number().int().min(1).max(10).optional(),
  /** What is retried. */
  on: z.array(retryCondition).optional(),
  /** Base of the exponential backoff before a retry (full jitter). */
  backoff: duration.optional(),
  /** Longest backoff. */
  maxBackoff: duration.optional(),
  /** Retries in flight may be at most this share of the pool's requests in flight (never fewer than 10). */
  budget: percent.optional(),
  /** Request bodies up to this size are kept while they stream, so that they can be sent again. */
  bufferBody: size.optional()
})

/** Sticky sessions by a cookie Portico sets (docs/balancing.md). */
const sticky = z.strictObject({
  /** The cookie's name. */
  cookie: token,
  /** Max-Age of the cookie; without it, a session cookie. */
  ttl: duration.optional(),
  /** The Secure attribute; default: set when the client connection is TLS. */
  secure: z.boolean().optional(),
  /** The HttpOnly attribute. */
  httpOnly: z.boolean().optional(),
  /** The SameSite attribute. */
  sameSite: z.enum(['Strict', 'Lax', 'None']).optional(),
  /** The Path attribute. */
  path: z.string().startsWith('/', 'expected a path starting with "/"').optional(),
  /** Environment variable holding a secret for the cookie values (HMAC-SHA256); without it they are plain SHA-256 hashes. */
  secretEnv: z.string().min(1).optional()
})

/** Settings of a pool: balancing, health, retries, load limits and connections. Inline upstreams and `pools:` share them. */
const poolSettings = {
  /** Balancing policy (docs/balancing.md). */
  policy: z.enum(['round-robin', 'weighted-round-robin', 'least-requests', 'random-two', 'first', 'hash'], {
    error: 'expected one of round-robin, weighted-round-robin, least-requests, random-two, first, hash'
  }).optional(),
  /** For policy hash: what to hash. */
  hashKey: hashKey.optional(),
  /** Weights by node URL (the same as `{ url, weight }` in the list). */
  weights: z.record(z.string(), weight).optional(),
  /** Keep a client on one node with a cookie Portico sets. */
  sticky: sticky.optional(),
  /** Active health checks. */
  healthCheck: healthCheck.optional(),
  /** Passive health (outlier detection). */
  outlier: outlier.optional(),
  /** Retries. */
  retry: retry.optional(),
  /** Most requests the pool serves at once (all nodes together). */
  maxRequests: maxRequests.optional(),
  /** Most requests each node serves at once (a node's own maxRequests wins). */
  maxRequestsPerNode: maxRequests.optional(),
  /** Requests beyond maxRequests wait here, then get 503. */
  queue: z.strictObject({
    /** How many requests may wait. */
    size: z.number().int().min(0).optional(),
    /** How long one may wait. */
    timeout: duration.optional()
  }).optional(),
  /** A node that becomes healthy again gets a share of traffic growing linearly over this time. */
  slowStart: duration.optional(),
  /** Below this percentage of usable nodes, balance over every node (Envoy's panic mode); 0 answers 503 when none is usable. */
  panicThreshold: z.number().min(0).max(100).optional(),
  /** How often a node named by a DNS name is resolved again; 0 leaves resolution to each new connection. */
  dnsRefresh: duration.optional(),
  /** How long a node that refused or failed to connect is skipped (the simple form of `outlier`). */
  failTimeout: duration.optional(),
  /** Most connections Portico opens to each node. */
  maxConnections: z.number().int().positive().optional(),
  /** How long an idle upstream connection is kept open. */
  keepAlive: duration.optional(),
  /** TLS to https:// nodes. Certificates are verified by default. */
  tls: z.strictObject({
    /** PEM file(s) of the CAs to trust instead of Node's bundle. */
    ca: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** SNI and verification name. */
    serverName: z.string().min(1).optional(),
    /** Client certificate (PEM) for mTLS. */
    cert: z.string().min(1).optional(),
    /** Client key (PEM) for mTLS. */
    key: z.string().min(1).optional(),
    /** Environment variable holding the client key's passphrase. */
    passphraseEnv: z.string().min(1).optional(),
    /** Skip certificate verification. Logged loudly at every start; never for production. */
    insecureSkipVerify: z.boolean().optional()
  }).optional(),
  /** Speak HTTP/2 to https:// nodes that offer it by ALPN (undici allowH2). */
  http2: z.boolean().optional()
}

const HASH_NEEDS_KEY = 'policy "hash" needs a hashKey: client-ip, uri, header:NAME, cookie:NAME or query:NAME'

const upstreamObject = z.strictObject({
  /** Remote nodes (and in-process handlers) balanced by `policy`. */
  nodes: z.array(member).min(1, 'expected at least one node').optional(),
  /** An in-process handler instead of nodes. */
  handler: handlerRef.optional(),
  /** In code: a fetch-style handler `(request) => Response` instead of nodes (the same as `handler: { fetch }`). */
  fetch: z.custom<(request: Request) => Response | Promise<Response>>((v) => typeof v === 'function', 'expected a (request) => Response function').optional(),
  /** A pool named under the top-level `pools:`; its nodes, settings and state are the pool's. */
  pool: z.string().min(1).optional(),
  ...poolSettings
}).refine((u) => [u.nodes, u.handler, u.fetch, u.pool].filter((v) => v !== undefined).length === 1, {
  message: 'an upstream has exactly one of "nodes", "handler", "fetch" or "pool"'
}).refine((u) => u.policy !== 'hash' || u.hashKey !== undefined, { message: HASH_NEEDS_KEY, path: ['policy'] })

/** A pool under the top-level `pools:`: nodes (or a handler) and the settings of an inline upstream. */
const namedPool = z.strictObject({
  /** Remote nodes (and in-process handlers). */
  nodes: z.array(member).min(1, 'expected at least one node').optional(),
  /** An in-process handler instead of nodes. */
  handler: handlerRef.optional(),
  ...poolSettings
}).refine((u) => (u.nodes === undefined) !== (u.handler === undefined), {
  message: 'a pool has exactly one of "nodes" or "handler"'
}).refine((u) => u.policy !== 'hash' || u.hashKey !== undefined, { message: HASH_NEEDS_KEY, path: ['policy'] })

/** A node list, or the object form. */
export const upstreamSchema = z.union([
  z.array(member).min(1, 'expected at least one node'),
  upstreamObject,
  z.custom<(...args: any[]) => unknown>((v) => typeof v === 'function')
], { error: 'expected a list of node URLs, { nodes: [...] }, { handler: ... } or a handler function' })

const headerOptions = z.strictObject({
  /** Add X-Forwarded-For (appended), X-Forwarded-Proto and X-Forwarded-Host. */
  xForwarded: z.boolean().optional(),
  /** Add an RFC 7239 Forwarded element (appended). */
  forwarded: z.boolean().optional(),
  /** The pseudonym in the Via header added to forwarded requests; false adds none. */
  via: z.union([z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a token such as "portico"'), z.literal(false)]).optional(),
  ...headerRules
})

/** One route: a host (or hosts) and a path prefix, and where matching requests go. */
export const routeSchema = z.strictObject({
  /** Exact name, "api." prefix key, "*.example.com" wildcard, or "*" (the default). */
  host: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Path prefix on segment boundaries. */
  path: z.string().startsWith('/', 'expected a path starting with "/"').optional(),
  /** Remove the matched prefix before forwarding. */
  stripPrefix: z.boolean().optional(),
  /** Where matching requests go; optional when `respond` or `redirect` (without `match`) answers every request. */
  upstream: upstreamSchema.optional(),
  /** Send the client's Host to the node (true) or the node's own host (false). */
  preserveHost: z.boolean().optional(),
  /** Add Strict-Transport-Security to responses sent over TLS (RFC 6797). */
  hsts: z.union([z.boolean(), z.strictObject({
    /** The max-age directive, as a duration. */
    maxAge: duration.optional(),
    includeSubDomains: z.boolean().optional(),
    preload: z.boolean().optional()
  })]).optional(),
  timeouts: timeouts.optional(),
  headers: headerOptions.optional(),
  /** Cache this route's responses (RFC 9111 shared cache). */
  cache: z.boolean().optional(),
  ...sharedRules,
  ...routeRules
})

const listener = z.strictObject({
  /** Address to bind. */
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535),
  /** Terminate TLS here with the certificates of `tls.certificates`, chosen by SNI. */
  tls: z.boolean().optional(),
  /** HTTP/2: on TLS listeners offered by ALPN beside HTTP/1.1; on cleartext ones, h2c with prior knowledge. */
  http2: z.boolean().optional(),
  /** Answer every request on this (cleartext) listener with a 308 redirect to https, keeping path and query; a number names the https port. */
  redirectToHttps: z.union([z.boolean(), z.number().int().min(1).max(65535)]).optional(),
  /** Most open client connections on this listener; further ones are closed at once. */
  maxConnections: z.number().int().positive().optional(),
  /** Most open client connections from one address (trusted proxies are not counted); further ones are closed at once. */
  maxConnectionsPerIp: z.number().int().positive().optional(),
  /** Connections the kernel may hold completed but not yet accepted (listen(2) backlog; capped by net.core.somaxconn). */
  backlog: z.number().int().positive().max(65535).optional()
})

/** One certificate: the host names it serves (exact or "*.example.com"), PEM chain and key files. */
const certificate = z.strictObject({
  hosts: z.array(z.string().min(1)).min(1, 'expected at least one host name'),
  /** PEM certificate chain file. */
  cert: z.string().min(1),
  /** PEM private key file. */
  key: z.string().min(1),
  /** Environment variable holding the key's passphrase (for encrypted keys). */
  passphraseEnv: z.string().min(1).optional(),
  /** Serve this certificate to clients that send no SNI (or an unknown name). */
  default: z.boolean().optional()
})

/** Automatic HTTPS: certificates obtained and renewed from an ACME CA (RFC 8555) for the routes' host names (docs/acme.md). */
const acmeOptions = z.strictObject({
  /** The account's contact address; the CA writes about expiring certificates and policy changes. */
  email: z.string().regex(/^[^\s@]+@[^\s@]+$/, 'expected an email address'),
  /** "letsencrypt", "letsencrypt-staging", or the URL of any RFC 8555 directory. */
  directory: z.union([z.enum(['letsencrypt', 'letsencrypt-staging']), z.string().regex(/^https:\/\//, 'expected "letsencrypt", "letsencrypt-staging" or an https:// directory URL')]).optional(),
  /**
   * How the CA checks control of a name, in order of preference: "http-01" (answered on the cleartext listeners,
   * port 80 in production), "tls-alpn-01" (answered on the TLS listeners, port 443). Read at start.
   */
  challenges: z.array(z.enum(['http-01', 'tls-alpn-01'])).min(1).refine((c) => new Set(c).size === c.length, 'a challenge type is listed twice').optional(),
  /** Where the account key and the certificates are kept: a directory, or Redis (shared by every instance on it). */
  storage: z.union([
    z.strictObject({
      /** A directory (relative to the config file); keys are written with mode 0600. */
      dir: z.string().min(1)
    }),
    z.strictObject({
      redis: z.strictObject({
        /** redis://[user:pass@]host:port[/db] or rediss:// for TLS. */
        url: z.string().min(1),
        /** Prefix of every key. */
        prefix: z.string().optional()
      })
    })
  ]).optional(),
  /** Renew a certificate this long before it expires. */
  renewBefore: duration.optional(),
  /** The names to manage; by default every exact host name of the routes. */
  hosts: z.array(z.string().min(1)).min(1).optional(),
  /** A PEM file of CA certificates to trust for the directory's HTTPS (a private CA; tests). */
  ca: z.string().min(1).optional(),
  /** Until a managed name has its certificate: serve the default certificate ("default"), or refuse the handshake ("refuse"). */
  pending: z.enum(['default', 'refuse']).optional(),
  /** On-demand TLS: a name first seen in a TLS handshake is ordered then, if the `ask` endpoint allows it. */
  onDemand: z.strictObject({
    /** GET ASK?domain=NAME must answer 200 for NAME to be ordered (any other answer, or none within 5 s, refuses). */
    ask: z.string().regex(/^https?:\/\//, 'expected an http:// or https:// URL'),
    /** Most orders started per period, over all names (e.g. "10/m"). */
    rateLimit: rate.optional(),
    /** Most on-demand orders in flight at once. */
    maxConcurrent: z.number().int().positive().optional()
  }).optional()
})

const tlsOptions = z.strictObject({
  certificates: z.array(certificate).min(1, 'expected at least one certificate').optional(),
  /** Obtain and renew certificates automatically (docs/acme.md). */
  acme: acmeOptions.optional(),
  /** Lowest TLS version accepted. */
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional(),
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are always the modern set). */
  ciphers: z.string().min(1).optional(),
  /** Reload certificates when their files change. */
  watch: z.boolean().optional()
})


/** The proxy cache settings (docs/cache.md). */
const cacheSettings = z.strictObject({
  /** Cache every route (routes may say `cache: false`). */
  enabled: z.boolean().optional(),
  /** Where responses are kept: "memory" (per process) or "redis" (shared by every instance). */
  store: z.enum(['memory', 'redis']).optional(),
  /** Total bytes the memory store holds (bodies and heads), least recently used evicted first. */
  maxSize: size.optional(),
  /** Largest response body stored; larger ones are forwarded and not stored. */
  maxObjectSize: size.optional(),
  /** Heuristic freshness as a fraction of the time since Last-Modified (RFC 9111 §4.2.2). */
  heuristicFraction: z.number().min(0).max(1).optional(),
  /** How long a stale response with a validator (ETag/Last-Modified) is kept for conditional revalidation. */
  retainStale: duration.optional(),
  /** How long a request waits for an identical in-flight request's response before going upstream itself; 0 turns collapsing off. */
  collapseTimeout: duration.optional(),
  /** Targeted cache-control fields (RFC 9213) that override Cache-Control for Portico, first present wins; never forwarded downstream. */
  targetedFields: z.array(token).optional(),
  /** The cache's name in the Cache-Status header (RFC 9211). */
  name: token.optional(),
  /** The shared store, for `store: redis`. */
  redis: z.strictObject({
    /** redis://[user:pass@]host:port[/db] or rediss:// for TLS. */
    url: z.string().min(1),
    /** Prefix of every Redis key (and of the purge channel). */
    prefix: z.string().optional(),
    /** Bodies are stored in chunks of this size. */
    chunkSize: size.optional(),
    /** A Redis command slower than this fails and the request bypasses the cache. */
    commandTimeout: duration.optional()
  }).optional()
})

/** The admin API: purge and cache statistics (docs/cache.md). Never on a public address unless you mean it. */
const adminSettings = z.strictObject({
  /** Address to bind. */
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535),
  /** Environment variable holding a bearer token every admin request must present. */
  tokenEnv: z.string().min(1).optional(),
  /** Prometheus metrics on GET /metrics (docs/metrics.md). */
  metrics: z.boolean().optional()
})

const logLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])

/** The whole config file. */
export const configSchema = z.strictObject({
  /** Listeners. */
  listen: z.array(listener).min(1).optional(),
  /** Certificates for `tls: true` listeners. */
  tls: tlsOptions.optional(),
  /** Short form: host key → upstream, for path "/". */
  upstreams: z.record(z.string().min(1), upstreamSchema).optional(),
  /** Full form. */
  routes: z.array(routeSchema).optional(),
  /** The proxy cache: true for the defaults, or settings (docs/cache.md). */
  cache: z.union([z.boolean(), cacheSettings]).optional(),
  /** The admin API (purge, cache statistics). */
  admin: adminSettings.optional(),
  /** Peers whose X-Forwarded-* / Forwarded fields are believed: addresses, CIDRs, "private", "loopback". */
  trustedProxies: z.array(z.string().refine(isAddressEntry, 'expected an address, a CIDR such as "10.0.0.0/8", "private" or "loopback"')).optional(),
  /** How request paths are normalised for routing (SECURITY.md). */
  paths: z.strictObject({
    /** route-only: route on the normalised path, forward the original; forward: route on and forward the normalised path; off: the raw path. */
    normalize: z.enum(['route-only', 'forward', 'off']).optional(),
    /** Answer 400 to a path with %2F or %5C (an encoded slash or backslash). */
    rejectEncodedSlash: z.boolean().optional(),
    /** Merge runs of "/" for routing. */
    mergeSlashes: z.boolean().optional()
  }).optional(),
  /** Worker processes (node:cluster) sharing the listeners: a number, or "auto" for one per core. */
  workers: z.union([z.number().int().min(1).max(256), z.literal('auto')], { error: 'expected a number of workers (1-256) or "auto"' }).optional(),
  /** Reload the config when its file changes (the CLI; debounced). SIGHUP and POST /config/reload always do. */
  watch: z.boolean().optional(),
  /** Named upstream pools, referenced by `upstream: { pool: NAME }` from any number of routes. */
  pools: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'expected a pool name of letters, digits, ".", "_" and "-"'), namedPool).optional(),
  /** Timeouts for every route (a route may set its own). */
  timeouts: timeouts.optional(),
  /** Forwarding-header options and header edits for every route (a route may set its own). */
  headers: headerOptions.optional(),
  ...sharedRules,
  server: z.strictObject({
    /** How long SIGTERM waits for in-flight requests before closing connections. */
    drainTimeout: duration.optional(),
    /** Idle keep-alive time for client connections. */
    keepAliveTimeout: duration.optional(),
    /** Time a client has to send the request head. */
    headersTimeout: duration.optional(),
    /** Time a client has to send the whole request. */
    requestTimeout: duration.optional(),
    /** Longest pause between two pieces of a request body (nginx's client_body_timeout). */
    bodyTimeout: duration.optional(),
    /** Largest request header section. */
    maxHeaderSize: size.optional()
  }).optional(),
  limits: z.strictObject({
    /** Largest request body; larger ones get 413. */
    maxRequestBody: size.optional()
  }).optional(),
  /** Hooks (in code only): one object or a list, see docs/embedding.md. */
  hooks: z.union([z.array(z.custom<ProxyHooks>(isHookObject, 'expected a hooks object')), z.custom<ProxyHooks>(isHookObject, 'expected a hooks object')]).optional(),
  log: z.strictObject({
    level: logLevel.optional(),
    /** One line per request. */
    access: z.boolean().optional(),
    /** The access line: json (every field), or combined (the Apache/nginx combined format plus request id and error code). */
    format: z.enum(['json', 'combined']).optional()
  }).optional(),
  /** W3C Trace Context: continue the client's trace (a new span id for the hop to the node) and start one when there is none. */
  tracing: z.union([z.boolean(), z.strictObject({
    /** Start a trace for a request that carries no valid traceparent. */
    start: z.boolean().optional(),
    /** The sampled flag of a trace Portico starts. */
    sampled: z.boolean().optional()
  })]).optional()
})

/** What users write (YAML/JSON file or `createProxy(options)`). */
export type PorticoConfig = z.input<typeof configSchema>
/** A route as users write it. */
export type RouteConfig = z.input<typeof routeSchema>
/** An upstream as users write it. */
export type UpstreamConfig = z.input<typeof upstreamSchema>
/** The config after the shape pass: durations in ms, sizes in bytes. */
export type ParsedConfig = z.output<typeof configSchema>
export type ParsedRoute = z.output<typeof routeSchema>
export type ParsedUpstream = z.output<typeof upstreamSchema>
/** A pool under `pools:` after the shape pass. */
export type ParsedPool = z.output<typeof namedPool>

/** Identity helper for typed config files: `export default defineConfig({ ... })`. */
export function defineConfig (config: PorticoConfig): PorticoConfig {
  return config
}
