/**
 * The one config schema (zod). It is the source of the TypeScript types (`PorticoConfig` for what users
 * write, `ParsedConfig` for what the loader hands on), of the keys docs/config.md documents and of every validation
 * message. Shape only: whether referenced handler modules exist and whether two routes claim the same host + path is
 * checked by `resolve.ts`, the second pass. Default values are not repeated here: defaults.ts holds them.
 */
import { Server } from 'node:http'
import { z } from 'zod'
import { parseDuration, parseSize } from './units.js'
import type { ProxyHooks } from '../hooks.js'

const HOOK_NAMES = ['onRequest', 'onUpstreamRequest', 'onUpstreamResponse', 'onError', 'onResponse']
function isHookObject (v: unknown): boolean {
  return typeof v === 'object' && v !== null && Object.entries(v).every(([k, f]) => HOOK_NAMES.includes(k) && (f === undefined || typeof f === 'function'))
}

/** A number, or a string with a unit, converted by `parse`; `message` says what was expected. */
function unit (parse: (v: string | number) => number | undefined, message: string) {
  return z.union([z.number(), z.string()], { error: message }).transform((v, ctx) => {
    const n = parse(v)
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message, input: v })
      return z.NEVER
    }
    return n
  })
}

const duration = unit(parseDuration, 'expected a duration such as "5s", "250ms" or a number of milliseconds')
const size = unit(parseSize, 'expected a size such as "16kb", "256mb" or a number of bytes')

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

/** One member of a node list: a URL, or an in-process handler. */
const member = z.union([nodeUrl, z.strictObject({ handler: handlerRef })], {
  error: 'expected a node URL such as "http://127.0.0.1:4000" or { handler: ... }'
})

const upstreamObject = z.strictObject({
  /** Remote nodes (and in-process handlers) balanced by `policy`. */
  nodes: z.array(member).min(1, 'expected at least one node').optional(),
  /** An in-process handler instead of nodes. */
  handler: handlerRef.optional(),
  /** In code: a fetch-style handler `(request) => Response` instead of nodes (the same as `handler: { fetch }`). */
  fetch: z.custom<(request: Request) => Response | Promise<Response>>((v) => typeof v === 'function', 'expected a (request) => Response function').optional(),
  /** Balancing policy. */
  policy: z.enum(['round-robin']).optional(),
  /** How long a node that refused a connection is skipped (passive health). */
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
}).refine((u) => [u.nodes, u.handler, u.fetch].filter((v) => v !== undefined).length === 1, {
  message: 'an upstream has exactly one of "nodes", "handler" or "fetch"'
})

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
  via: z.union([z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a token such as "portico"'), z.literal(false)]).optional()
})

/** One route: a host (or hosts) and a path prefix, and where matching requests go. */
export const routeSchema = z.strictObject({
  /** Exact name, "api." prefix key, "*.example.com" wildcard, or "*" (the default). */
  host: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Path prefix on segment boundaries. */
  path: z.string().startsWith('/', 'expected a path starting with "/"').optional(),
  /** Remove the matched prefix before forwarding. */
  stripPrefix: z.boolean().optional(),
  upstream: upstreamSchema,
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
  cache: z.boolean().optional()
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
  redirectToHttps: z.union([z.boolean(), z.number().int().min(1).max(65535)]).optional()
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

const tlsOptions = z.strictObject({
  certificates: z.array(certificate).min(1, 'expected at least one certificate'),
  /** Lowest TLS version accepted. */
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional(),
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are always the modern set). */
  ciphers: z.string().min(1).optional(),
  /** Reload certificates when their files change. */
  watch: z.boolean().optional()
})

const token = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a token such as "Portico"')

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
  tokenEnv: z.string().min(1).optional()
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
  /** Timeouts for every route (a route may set its own). */
  timeouts: timeouts.optional(),
  /** Forwarding-header options for every route (a route may set its own). */
  headers: headerOptions.optional(),
  server: z.strictObject({
    /** How long SIGTERM waits for in-flight requests before closing connections. */
    drainTimeout: duration.optional(),
    /** Idle keep-alive time for client connections. */
    keepAliveTimeout: duration.optional(),
    /** Time a client has to send the request head. */
    headersTimeout: duration.optional(),
    /** Time a client has to send the whole request. */
    requestTimeout: duration.optional(),
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
    /** One JSON line per request. */
    access: z.boolean().optional()
  }).optional()
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

/** Identity helper for typed config files: `export default defineConfig({ ... })`. */
export function defineConfig (config: PorticoConfig): PorticoConfig {
  return config
}
