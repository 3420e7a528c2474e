/**
 * The second config pass: turns the shape-checked config into the runtime form. Expands the short form
 * (`upstreams:`) into routes on path "/", applies defaults, loads handler modules, and checks meaning (valid
 * host keys, no two routes claiming the same host + path). Every problem is collected with its key path; none
 * is thrown one at a time.
 */
import { pathToFileURL } from 'node:url'
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import { Server, type RequestListener } from 'node:http'
import type { ParsedConfig, ParsedRoute, ParsedUpstream } from './schema.js'
import type { ProxyHooks } from '../hooks.js'

/** A fetch-style handler: `(request) => Response`. */
export type FetchHandler = (request: Request) => Response | Promise<Response>

/** What an in-process member runs. */
export type HandlerTarget =
  | { kind: 'listener', listener: RequestListener }
  | { kind: 'fetch', fetch: FetchHandler }
  | { kind: 'server', server: Server }

/** One member of an upstream: a remote node or an in-process handler. */
export type MemberSpec =
  | { kind: 'node', id: string, origin: string, protocol: 'http:' | 'https:' }
  | { kind: 'handler', id: string, target: HandlerTarget }

export interface ResolvedTimeouts { connect: number, response: number, idle: number }
export interface ResolvedHeaderOptions { xForwarded: boolean, forwarded: boolean, via: string | false }

export interface ResolvedUpstream {
  members: MemberSpec[]
  policy: 'round-robin'
  failTimeout: number
  maxConnections: number
  keepAlive: number
  /** TLS options for https:// nodes (files already read). */
  tls: UpstreamTls
  /** HTTP/2 to https:// nodes by ALPN. */
  http2: boolean
}

/** Client-side TLS for https:// nodes, as Node's tls.connect options. */
export interface UpstreamTls {
  ca?: Buffer[]
  servername?: string
  cert?: Buffer
  key?: Buffer
  passphrase?: string
  rejectUnauthorized: boolean
}

/** One server certificate, files resolved to absolute paths. */
export interface ResolvedCertificate {
  hosts: string[]
  certFile: string
  keyFile: string
  passphrase?: string
  default: boolean
}

/** Server-side TLS. */
export interface ResolvedTls {
  certificates: ResolvedCertificate[]
  minVersion: 'TLSv1.2' | 'TLSv1.3'
  ciphers?: string
  watch: boolean
}

export interface ResolvedRoute {
  /** Stable name for logs: "host+path". */
  name: string
  hosts: string[]
  path: string
  stripPrefix: boolean
  preserveHost: boolean
  upstream: ResolvedUpstream
  timeouts: ResolvedTimeouts
  headers: ResolvedHeaderOptions
  /** The Strict-Transport-Security value for responses over TLS, or null. */
  hsts: string | null
  /** Responses on this route go through the proxy cache (config.cache is then set). */
  cache: boolean
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
}

export interface ResolvedListener {
  host: string
  port: number
  tls: boolean
  http2: boolean
  /** false, or the https port to redirect to (true in the config means 443). */
  redirectToHttps: number | false
}

/** Brands a resolved config (kept by object spread, unlike a WeakSet entry), so APIs taking either form can tell. */
export const RESOLVED: unique symbol = Symbol.for('portico.resolvedConfig')

export interface ResolvedConfig {
  readonly [RESOLVED]: true
  listen: ResolvedListener[]
  routes: ResolvedRoute[]
  server: { drainTimeout: number, keepAliveTimeout: number, headersTimeout: number, requestTimeout: number, maxHeaderSize: number }
  limits: { maxRequestBody: number | null }
  log: { level: string, access: boolean }
  hooks: ProxyHooks | ProxyHooks[] | undefined
  tls: ResolvedTls | null
  /** The proxy cache, when any route uses it. */
  cache: ResolvedCache | null
  admin: ResolvedAdmin | null
}

/** A problem found by the meaning pass, at a key path of the input object. */
export interface ConfigIssue { path: (string | number)[], message: string, value?: unknown }

export const DEFAULT_TIMEOUTS: ResolvedTimeouts = { connect: 5_000, response: 60_000, idle: 60_000 }

const HOST_LABELS = /^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/
const IPV6_LITERAL = /^\[[0-9a-f:.]+\]$/

/**
 * Checks one host key and returns it normalized (lowercase), or an error message. Forms: "*", "*.example.com",
 * "api." (prefix key), an exact name, an IPv4 address or a bracketed IPv6 literal. Ports are not part of keys.
 */
export function normalizeHostKey (key: string): { key: string } | { error: string } {
  const k = key.trim().toLowerCase()
  if (k === '*') return { key: k }
  if (k.startsWith('*.')) {
    return HOST_LABELS.test(k.slice(2)) ? { key: k } : { error: 'expected a wildcard such as "*.example.com"' }
  }
  if (IPV6_LITERAL.test(k)) return { key: k }
  if (k.endsWith('.')) {
    return HOST_LABELS.test(k.slice(0, -1)) ? { key: k } : { error: 'expected a prefix key such as "api."' }
  }
  if (k.includes(':')) return { error: 'host keys do not include a port; requests match whatever port they came to' }
  return HOST_LABELS.test(k) ? { key: k } : { error: 'expected a host name, "api." prefix key, "*.example.com" wildcard or "*"' }
}

/** Options for resolving. */
export interface ResolveOptions {
  /** Directory that relative handler module paths are resolved against. */
  baseDir: string
  /** Handler modules loaded by `loadHandlerModules`, by reference string; an error message when loading failed. */
  modules?: ReadonlyMap<string, HandlerTarget | string>
}

/**
 * Imports every handler module a config names by path (`"./apps/status.mjs#export"`), relative to `baseDir`.
 * The result feeds `resolveConfig`, which itself stays synchronous.
 */
export async function loadHandlerModules (cfg: ParsedConfig, baseDir: string): Promise<Map<string, HandlerTarget | string>> {
  const refs = new Set<string>()
  const visit = (u: ParsedUpstream): void => {
    if (typeof u === 'function') return
    const list = Array.isArray(u) ? u : (u.nodes ?? [{ handler: u.handler }])
    for (const m of list) if (typeof m === 'object' && m !== null && typeof m.handler === 'string') refs.add(m.handler)
  }
  for (const u of Object.values(cfg.upstreams ?? {})) visit(u)
  for (const r of cfg.routes ?? []) visit(r.upstream)
  const out = new Map<string, HandlerTarget | string>()
  await Promise.all([...refs].map(async (ref) => {
    const [file, exportName = 'default'] = ref.split('#')
    const abs = path.resolve(baseDir, file)
    try {
      const mod = await import(pathToFileURL(abs).href) as Record<string, unknown>
      if (!(exportName in mod)) out.set(ref, `module "${file}" has no export "${exportName}"`)
      else out.set(ref, toTarget(mod[exportName]) ?? `export "${exportName}" of "${file}" is not a (req, res) => void function or an object with fetch()`)
    } catch (err) {
      out.set(ref, `cannot load handler module "${file}": ${(err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' ? 'file not found' : (err as Error).message}`)
    }
  }))
  return out
}

/**
 * Runs the meaning pass. Returns the resolved config, or the list of issues (never both). Synchronous: module
 * paths must have been loaded by `loadHandlerModules` first.
 */
export function resolveConfig (cfg: ParsedConfig, options: ResolveOptions): { config: ResolvedConfig } | { issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = []
  const baseTimeouts: ResolvedTimeouts = { ...DEFAULT_TIMEOUTS, ...stripUndefined(cfg.timeouts ?? {}) }
  const baseHeaders: ResolvedHeaderOptions = {
    xForwarded: cfg.headers?.xForwarded ?? true,
    forwarded: cfg.headers?.forwarded ?? false,
    via: cfg.headers?.via ?? 'portico'
  }

  const cacheOn = cfg.cache === true || (typeof cfg.cache === 'object' && cfg.cache.enabled !== false)

  const inputs: { route: ParsedRoute, at: (string | number)[] }[] = []
  for (const [host, upstream] of Object.entries(cfg.upstreams ?? {})) {
    inputs.push({ route: { host, path: '/', upstream }, at: ['upstreams', host] })
  }
  ;(cfg.routes ?? []).forEach((route, i) => inputs.push({ route, at: ['routes', i] }))

  if (inputs.length === 0) {
    issues.push({ path: [], message: 'no routes: add "upstreams" (host → nodes) or "routes"' })
  }

  const routes: ResolvedRoute[] = []
  const claimed = new Map<string, (string | number)[]>()

  for (const { route, at } of inputs) {
    const hostList = route.host === undefined ? ['*'] : Array.isArray(route.host) ? route.host : [route.host]
    const hosts: string[] = []
    hostList.forEach((h, i) => {
      const r = normalizeHostKey(h)
      const hostPath = at[0] === 'upstreams' ? at : Array.isArray(route.host) ? [...at, 'host', i] : [...at, 'host']
      if ('error' in r) issues.push({ path: hostPath, message: r.error, value: h })
      else hosts.push(r.key)
    })
    const routePath = normalizeRoutePath(route.path ?? '/')
    for (const h of hosts) {
      const claimKey = `${h} ${routePath}`
      const prior = claimed.get(claimKey)
      if (prior !== undefined) {
        issues.push({ path: at, message: `host "${h}" path "${routePath}" is already claimed by ${prior.join('.')}` })
      } else {
        claimed.set(claimKey, at)
      }
    }
    const upstream = resolveUpstream(route.upstream, at[0] === 'upstreams' ? at : [...at, 'upstream'], options, issues)
    if (upstream === undefined) continue
    routes.push({
      name: `${hosts.join(',')}${routePath === '/' ? '' : routePath}`,
      hosts,
      path: routePath,
      stripPrefix: route.stripPrefix ?? false,
      preserveHost: route.preserveHost ?? true,
      hsts: hstsValue(route.hsts),
      upstream,
      timeouts: { ...baseTimeouts, ...stripUndefined(route.timeouts ?? {}) },
      headers: {
        xForwarded: route.headers?.xForwarded ?? baseHeaders.xForwarded,
        forwarded: route.headers?.forwarded ?? baseHeaders.forwarded,
        via: route.headers?.via ?? baseHeaders.via
      },
      cache: route.cache ?? cacheOn
    })
  }

  const tls = resolveServerTls(cfg, options.baseDir, issues)
  ;(cfg.listen ?? []).forEach((l, i) => {
    if (l.tls === true && cfg.tls === undefined) issues.push({ path: ['listen', i, 'tls'], message: 'a TLS listener needs certificates: add tls.certificates' })
    if (l.tls === true && l.redirectToHttps !== undefined && l.redirectToHttps !== false) issues.push({ path: ['listen', i, 'redirectToHttps'], message: 'only a cleartext listener redirects to https' })
  })
  const cache = routes.some((r) => r.cache) ? resolveCache(cfg, issues) : null
  const admin = resolveAdmin(cfg, issues)
  if (issues.length > 0) return { issues }
  return {
    config: {
      [RESOLVED]: true,
      listen: (cfg.listen ?? [{ port: 8080 }]).map((l) => ({
        host: l.host ?? '0.0.0.0',
        port: l.port,
        tls: l.tls ?? false,
        http2: l.http2 ?? (l.tls ?? false),
        redirectToHttps: l.redirectToHttps === true ? 443 : typeof l.redirectToHttps === 'number' ? l.redirectToHttps : false
      })),
      tls,
      routes,
      server: {
        drainTimeout: cfg.server?.drainTimeout ?? 10_000,
        keepAliveTimeout: cfg.server?.keepAliveTimeout ?? 5_000,
        headersTimeout: cfg.server?.headersTimeout ?? 30_000,
        requestTimeout: cfg.server?.requestTimeout ?? 300_000,
        maxHeaderSize: cfg.server?.maxHeaderSize ?? 16 * 1024
      },
      limits: { maxRequestBody: cfg.limits?.maxRequestBody ?? null },
      log: { level: cfg.log?.level ?? 'info', access: cfg.log?.access ?? true },
      hooks: cfg.hooks,
      cache,
      admin
    }
  }
}

function resolveCache (cfg: ParsedConfig, issues: ConfigIssue[]): ResolvedCache {
  const c = typeof cfg.cache === 'object' ? cfg.cache : {}
  const store = c.store ?? 'memory'
  if (store === 'redis' && c.redis === undefined) issues.push({ path: ['cache', 'store'], message: 'store "redis" needs cache.redis.url', value: store })
  if (c.redis !== undefined && !/^rediss?:\/\//.test(c.redis.url)) issues.push({ path: ['cache', 'redis', 'url'], message: 'expected a redis:// or rediss:// URL', value: c.redis.url })
  return {
    store,
    maxSize: c.maxSize ?? 256 * 1024 * 1024,
    maxObjectSize: c.maxObjectSize ?? 8 * 1024 * 1024,
    heuristicFraction: c.heuristicFraction ?? 0.1,
    retainStale: c.retainStale ?? 3_600_000,
    collapseTimeout: c.collapseTimeout ?? 10_000,
    targetedFields: (c.targetedFields ?? ['CDN-Cache-Control', 'Surrogate-Control']).map((f) => f.toLowerCase()),
    name: c.name ?? 'Portico',
    surrogateToken: (c.name ?? 'Portico').toLowerCase(),
    redis: c.redis === undefined
      ? null
      : { url: c.redis.url, prefix: c.redis.prefix ?? 'portico:', chunkSize: c.redis.chunkSize ?? 64 * 1024, commandTimeout: c.redis.commandTimeout ?? 1_000 }
  }
}

function resolveAdmin (cfg: ParsedConfig, issues: ConfigIssue[]): ResolvedAdmin | null {
  const a = cfg.admin
  if (a === undefined) return null
  let token: string | null = null
  if (a.tokenEnv !== undefined) {
    token = process.env[a.tokenEnv] ?? null
    if (token === null || token === '') issues.push({ path: ['admin', 'tokenEnv'], message: `environment variable ${a.tokenEnv} is not set`, value: a.tokenEnv })
  }
  return { host: a.host ?? '127.0.0.1', port: a.port, token }
}

/** "/api/" and "/api" claim the same prefix; keep one spelling without the trailing slash. */
function normalizeRoutePath (p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.replace(/\/+$/, '') || '/' : p
}

function resolveUpstream (
  u: ParsedUpstream, at: (string | number)[], options: ResolveOptions, issues: ConfigIssue[]
): ResolvedUpstream | undefined {
  const defaults = { policy: 'round-robin' as const, failTimeout: 10_000, maxConnections: 256, keepAlive: 4_000, tls: { rejectUnauthorized: true }, http2: false }
  if (typeof u === 'function') {
    const target = resolveHandler(u, at, options, issues)
    return target === undefined ? undefined : { ...defaults, members: [{ kind: 'handler', id: handlerId(u), target }] }
  }
  const obj = Array.isArray(u) ? { nodes: u } : u
  const list = obj.nodes ?? [{ handler: obj.handler! }]
  const listAt = Array.isArray(u) ? at : obj.nodes !== undefined ? [...at, 'nodes'] : at
  const members: MemberSpec[] = []
  for (let i = 0; i < list.length; i++) {
    const m = list[i]
    if (typeof m === 'string') {
      const url = new URL(m)
      members.push({ kind: 'node', id: url.origin, origin: url.origin, protocol: url.protocol as 'http:' | 'https:' })
    } else {
      const memberAt = obj.nodes !== undefined ? [...listAt, i, 'handler'] : [...at, 'handler']
      const target = resolveHandler(m.handler, memberAt, options, issues)
      if (target !== undefined) members.push({ kind: 'handler', id: handlerId(m.handler), target })
    }
  }
  if (members.length !== list.length) return undefined
  const opts = Array.isArray(u) ? {} : u
  const tlsAt = [...at, 'tls']
  return {
    tls: resolveUpstreamTls(opts.tls, options.baseDir, tlsAt, issues),
    http2: opts.http2 ?? false,
    members,
    policy: opts.policy ?? defaults.policy,
    failTimeout: opts.failTimeout ?? defaults.failTimeout,
    maxConnections: opts.maxConnections ?? defaults.maxConnections,
    keepAlive: opts.keepAlive ?? defaults.keepAlive
  }
}

function handlerId (ref: unknown): string {
  if (typeof ref === 'string') return `handler:${ref}`
  const name = typeof ref === 'function' ? ref.name : ''
  return `handler:${name || 'anonymous'}`
}

function toTarget (value: unknown): HandlerTarget | undefined {
  // An http.Server of the app's own (not listening): it answers requests and upgrades with its own listeners.
  if (value instanceof Server) return { kind: 'server', server: value }
  const v = value as { routing?: unknown, ready?: unknown, callback?: unknown, fetch?: unknown, server?: unknown } | null
  // A Fastify instance: requests enter through its router once plugins are ready; upgrades through its server.
  if (v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.routing === 'function' && typeof v.ready === 'function') {
    const app = v as { routing: RequestListener, ready: () => Promise<unknown> }
    const ready = app.ready()
    return { kind: 'listener', listener: (req, res) => { ready.then(() => app.routing(req, res), (err: unknown) => res.destroy(err as Error)) } }
  }
  // A Koa app: its callback() is the request listener.
  if (v !== null && typeof v === 'object' && typeof v.callback === 'function' && typeof v.fetch !== 'function') {
    return { kind: 'listener', listener: (v.callback as () => RequestListener).call(v) }
  }
  if (typeof value === 'function') return { kind: 'listener', listener: value as RequestListener }
  if (typeof value === 'object' && value !== null && typeof (value as { fetch?: unknown }).fetch === 'function') {
    const obj = value as { fetch: FetchHandler }
    return { kind: 'fetch', fetch: (req) => obj.fetch(req) }
  }
  return undefined
}

function resolveHandler (ref: unknown, at: (string | number)[], options: ResolveOptions, issues: ConfigIssue[]): HandlerTarget | undefined {
  if (typeof ref !== 'string') {
    const t = toTarget(ref)
    if (t === undefined) issues.push({ path: at, message: 'expected a (req, res) => void function or an object with fetch()' })
    return t
  }
  const loaded = options.modules?.get(ref)
  if (loaded === undefined) {
    issues.push({ path: at, message: 'handler module paths are loaded by the file loader (loadConfigFile) or createProxyAsync; pass the function itself here', value: ref })
    return undefined
  }
  if (typeof loaded === 'string') {
    issues.push({ path: at, message: loaded, value: ref })
    return undefined
  }
  return loaded
}

function stripUndefined<T extends object> (o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}

/** RFC 6797 §6.1: `max-age=N[; includeSubDomains][; preload]`. */
function hstsValue (h: ParsedRoute['hsts']): string | null {
  if (h === undefined || h === false) return null
  const o = h === true ? {} : h
  const maxAge = Math.floor((o.maxAge ?? 31_536_000_000) / 1000)
  return `max-age=${maxAge}${o.includeSubDomains ? '; includeSubDomains' : ''}${o.preload ? '; preload' : ''}`
}

function readFileIssue (file: string, baseDir: string, at: (string | number)[], issues: ConfigIssue[]): Buffer | undefined {
  try {
    return readFileSync(path.resolve(baseDir, file))
  } catch (err) {
    issues.push({ path: at, message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, value: file })
    return undefined
  }
}

function passphraseFrom (env: string | undefined, at: (string | number)[], issues: ConfigIssue[]): string | undefined {
  if (env === undefined) return undefined
  const value = process.env[env]
  if (value === undefined) issues.push({ path: at, message: `environment variable ${env} is not set`, value: env })
  return value
}

function resolveUpstreamTls (t: NonNullable<Exclude<ParsedUpstream, unknown[] | ((...args: any[]) => unknown)>>['tls'], baseDir: string, at: (string | number)[], issues: ConfigIssue[]): UpstreamTls {
  if (t === undefined) return { rejectUnauthorized: true }
  const out: UpstreamTls = { rejectUnauthorized: t.insecureSkipVerify !== true }
  if (t.ca !== undefined) {
    const list = Array.isArray(t.ca) ? t.ca : [t.ca]
    out.ca = list.map((f, i) => readFileIssue(f, baseDir, Array.isArray(t.ca) ? [...at, 'ca', i] : [...at, 'ca'], issues)).filter((b): b is Buffer => b !== undefined)
  }
  if (t.serverName !== undefined) out.servername = t.serverName
  if ((t.cert === undefined) !== (t.key === undefined)) issues.push({ path: at, message: 'a client certificate needs both cert and key' })
  if (t.cert !== undefined) out.cert = readFileIssue(t.cert, baseDir, [...at, 'cert'], issues)
  if (t.key !== undefined) out.key = readFileIssue(t.key, baseDir, [...at, 'key'], issues)
  const passphrase = passphraseFrom(t.passphraseEnv, [...at, 'passphraseEnv'], issues)
  if (passphrase !== undefined) out.passphrase = passphrase
  // A key that does not decrypt or match would otherwise fail every connection as a 502; say so at load time.
  if (out.cert !== undefined && out.key !== undefined && (t.passphraseEnv === undefined || passphrase !== undefined)) {
    try {
      createSecureContext({ cert: out.cert, key: out.key, passphrase })
    } catch (err) {
      issues.push({ path: [...at, 'key'], message: `client certificate and key do not load: ${(err as Error).message}`, value: t.key })
    }
  }
  return out
}

function resolveServerTls (cfg: ParsedConfig, baseDir: string, issues: ConfigIssue[]): ResolvedTls | null {
  if (cfg.tls === undefined) return null
  const certificates: ResolvedCertificate[] = []
  cfg.tls.certificates.forEach((c, i) => {
    const at = ['tls', 'certificates', i]
    const hosts: string[] = []
    c.hosts.forEach((h, j) => {
      const r = normalizeHostKey(h)
      if ('error' in r || r.key === '*' || (r.key.endsWith('.') && !r.key.startsWith('*.'))) issues.push({ path: [...at, 'hosts', j], message: 'expected a host name or "*.example.com"', value: h })
      else hosts.push(r.key)
    })
    const cert = readFileIssue(c.cert, baseDir, [...at, 'cert'], issues)
    const key = readFileIssue(c.key, baseDir, [...at, 'key'], issues)
    const passphrase = passphraseFrom(c.passphraseEnv, [...at, 'passphraseEnv'], issues)
    if (cert !== undefined && key !== undefined) {
      try {
        createSecureContext({ cert, key, passphrase })
      } catch (err) {
        issues.push({ path: at, message: `certificate and key do not load: ${(err as Error).message}` })
      }
    }
    certificates.push({ hosts, certFile: path.resolve(baseDir, c.cert), keyFile: path.resolve(baseDir, c.key), passphrase, default: c.default ?? false })
  })
  return { certificates, minVersion: cfg.tls.minVersion ?? 'TLSv1.2', ciphers: cfg.tls.ciphers, watch: cfg.tls.watch ?? true }
}

/** True for a config produced by `resolveConfig` (or a spread copy of one), false for user options. */
export function isResolvedConfig (c: unknown): c is ResolvedConfig {
  return typeof c === 'object' && c !== null && (c as { [RESOLVED]?: unknown })[RESOLVED] === true
}
