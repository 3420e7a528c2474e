/**
 * The second config pass: turns the shape-checked config into the resolved form (resolved.ts). Expands the short
 * form (`upstreams:`) into routes on path "/", applies the defaults (defaults.ts, the one table of them), and checks
 * meaning (valid host keys, no two routes claiming the same host + path, handlers that exist, files that load).
 * Every problem is collected with its key path; none is thrown one at a time.
 *
 * Loading handler modules (handler-modules.ts) and reading TLS files (tls-files.ts) are their own rooms; this one
 * only decides what the config means.
 */
import type { ParsedConfig, ParsedRoute, ParsedUpstream } from './schema.js'
import { DEFAULTS } from './defaults.js'
import { handlerId, resolveHandler, type HandlerModules } from './handler-modules.js'
import { resolveServerTls, resolveUpstreamTls } from './tls-files.js'
import { normalizeHostKey } from '../routing/host.js'
import {
  RESOLVED, type ConfigIssue, type MemberSpec, type ResolvedAdmin, type ResolvedCache, type ResolvedConfig,
  type ResolvedHeaderOptions, type ResolvedRoute, type ResolvedTimeouts, type ResolvedUpstream
} from './resolved.js'

/** Options for resolving. */
export interface ResolveOptions {
  /** Directory that relative handler module paths and TLS files are resolved against. */
  baseDir: string
  /** Handler modules loaded by `loadHandlerModules`, by reference string; an error message when loading failed. */
  modules?: HandlerModules
}

type Path = (string | number)[]

/**
 * Runs the meaning pass. Returns the resolved config, or the list of issues (never both). Synchronous: module
 * paths must have been loaded by `loadHandlerModules` first.
 */
export function resolveConfig (cfg: ParsedConfig, options: ResolveOptions): { config: ResolvedConfig } | { issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = []
  const baseTimeouts: ResolvedTimeouts = {
    connect: cfg.timeouts?.connect ?? DEFAULTS['timeouts.connect'],
    response: cfg.timeouts?.response ?? DEFAULTS['timeouts.response'],
    idle: cfg.timeouts?.idle ?? DEFAULTS['timeouts.idle']
  }
  const baseHeaders: ResolvedHeaderOptions = {
    xForwarded: cfg.headers?.xForwarded ?? DEFAULTS['headers.xForwarded'],
    forwarded: cfg.headers?.forwarded ?? DEFAULTS['headers.forwarded'],
    via: cfg.headers?.via ?? DEFAULTS['headers.via']
  }
  const cacheOn = cfg.cache === undefined ? DEFAULTS.cache : cfg.cache === true || (typeof cfg.cache === 'object' && cfg.cache.enabled !== false)

  const inputs: { route: ParsedRoute, at: Path }[] = []
  for (const [host, upstream] of Object.entries(cfg.upstreams ?? {})) {
    inputs.push({ route: { host, path: '/', upstream }, at: ['upstreams', host] })
  }
  ;(cfg.routes ?? []).forEach((route, i) => inputs.push({ route, at: ['routes', i] }))
  if (inputs.length === 0) issues.push({ path: [], message: 'no routes: add "upstreams" (host → nodes) or "routes"' })

  const routes: ResolvedRoute[] = []
  const claimed = new Map<string, Path>()
  for (const { route, at } of inputs) {
    const hosts = resolveHosts(route, at, issues)
    const routePath = normalizeRoutePath(route.path ?? DEFAULTS['routes.path'])
    for (const h of hosts) {
      const claimKey = `${h} ${routePath}`
      const prior = claimed.get(claimKey)
      if (prior !== undefined) issues.push({ path: at, message: `host "${h}" path "${routePath}" is already claimed by ${prior.join('.')}` })
      else claimed.set(claimKey, at)
    }
    const upstream = resolveUpstream(route.upstream, at[0] === 'upstreams' ? at : [...at, 'upstream'], options, issues)
    if (upstream === undefined) continue
    routes.push({
      name: `${hosts.join(',')}${routePath === '/' ? '' : routePath}`,
      hosts,
      path: routePath,
      stripPrefix: route.stripPrefix ?? DEFAULTS['routes.stripPrefix'],
      preserveHost: route.preserveHost ?? DEFAULTS['routes.preserveHost'],
      hsts: hstsValue(route.hsts),
      upstream,
      timeouts: {
        connect: route.timeouts?.connect ?? baseTimeouts.connect,
        response: route.timeouts?.response ?? baseTimeouts.response,
        idle: route.timeouts?.idle ?? baseTimeouts.idle
      },
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
  const s = cfg.server ?? {}
  return {
    config: {
      [RESOLVED]: true,
      listen: (cfg.listen ?? DEFAULTS.listen).map((l: { host?: string, port: number, tls?: boolean, http2?: boolean, redirectToHttps?: boolean | number }) => {
        const tlsOn = l.tls ?? DEFAULTS['listen.tls']
        return {
          host: l.host ?? DEFAULTS['listen.host'],
          port: l.port,
          tls: tlsOn,
          // TLS listeners offer h2 by ALPN unless told not to; cleartext h2c is opt-in.
          http2: l.http2 ?? tlsOn,
          redirectToHttps: l.redirectToHttps === true ? 443 : typeof l.redirectToHttps === 'number' ? l.redirectToHttps : false
        }
      }),
      tls,
      routes,
      server: {
        drainTimeout: s.drainTimeout ?? DEFAULTS['server.drainTimeout'],
        keepAliveTimeout: s.keepAliveTimeout ?? DEFAULTS['server.keepAliveTimeout'],
        headersTimeout: s.headersTimeout ?? DEFAULTS['server.headersTimeout'],
        requestTimeout: s.requestTimeout ?? DEFAULTS['server.requestTimeout'],
        maxHeaderSize: s.maxHeaderSize ?? DEFAULTS['server.maxHeaderSize']
      },
      limits: { maxRequestBody: cfg.limits?.maxRequestBody ?? null },
      log: { level: cfg.log?.level ?? DEFAULTS['log.level'], access: cfg.log?.access ?? DEFAULTS['log.access'] },
      hooks: cfg.hooks,
      cache,
      admin
    }
  }
}

/** A route's host keys, normalized; each invalid one is an issue at its own key path. */
function resolveHosts (route: ParsedRoute, at: Path, issues: ConfigIssue[]): string[] {
  const hostList = route.host === undefined ? [DEFAULTS['routes.host']] : Array.isArray(route.host) ? route.host : [route.host]
  const hosts: string[] = []
  hostList.forEach((h, i) => {
    const r = normalizeHostKey(h)
    const hostPath = at[0] === 'upstreams' ? at : Array.isArray(route.host) ? [...at, 'host', i] : [...at, 'host']
    if ('error' in r) issues.push({ path: hostPath, message: r.error, value: h })
    else hosts.push(r.key)
  })
  return hosts
}

function resolveCache (cfg: ParsedConfig, issues: ConfigIssue[]): ResolvedCache {
  const c = typeof cfg.cache === 'object' ? cfg.cache : {}
  const store = c.store ?? DEFAULTS['cache.store']
  if (store === 'redis' && c.redis === undefined) issues.push({ path: ['cache', 'store'], message: 'store "redis" needs cache.redis.url', value: store })
  if (c.redis !== undefined && !/^rediss?:\/\//.test(c.redis.url)) issues.push({ path: ['cache', 'redis', 'url'], message: 'expected a redis:// or rediss:// URL', value: c.redis.url })
  const name = c.name ?? DEFAULTS['cache.name']
  return {
    store,
    maxSize: c.maxSize ?? DEFAULTS['cache.maxSize'],
    maxObjectSize: c.maxObjectSize ?? DEFAULTS['cache.maxObjectSize'],
    heuristicFraction: c.heuristicFraction ?? DEFAULTS['cache.heuristicFraction'],
    retainStale: c.retainStale ?? DEFAULTS['cache.retainStale'],
    collapseTimeout: c.collapseTimeout ?? DEFAULTS['cache.collapseTimeout'],
    targetedFields: (c.targetedFields ?? DEFAULTS['cache.targetedFields']).map((f) => f.toLowerCase()),
    name,
    surrogateToken: name.toLowerCase(),
    redis: c.redis === undefined
      ? null
      : {
          url: c.redis.url,
          prefix: c.redis.prefix ?? DEFAULTS['cache.redis.prefix'],
          chunkSize: c.redis.chunkSize ?? DEFAULTS['cache.redis.chunkSize'],
          commandTimeout: c.redis.commandTimeout ?? DEFAULTS['cache.redis.commandTimeout']
        }
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
  return { host: a.host ?? DEFAULTS['admin.host'], port: a.port, token }
}

/** "/api/" and "/api" claim the same prefix; keep one spelling without the trailing slash. */
function normalizeRoutePath (p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.replace(/\/+$/, '') || '/' : p
}

function resolveUpstream (u: ParsedUpstream, at: Path, options: ResolveOptions, issues: ConfigIssue[]): ResolvedUpstream | undefined {
  const opts = Array.isArray(u) || typeof u === 'function' ? {} : u
  const members = resolveMembers(u, at, options, issues)
  if (members === undefined) return undefined
  return {
    members,
    policy: opts.policy ?? DEFAULTS['routes.upstream.policy'],
    failTimeout: opts.failTimeout ?? DEFAULTS['routes.upstream.failTimeout'],
    maxConnections: opts.maxConnections ?? DEFAULTS['routes.upstream.maxConnections'],
    keepAlive: opts.keepAlive ?? DEFAULTS['routes.upstream.keepAlive'],
    tls: resolveUpstreamTls(opts.tls, options.baseDir, [...at, 'tls'], issues),
    http2: opts.http2 ?? DEFAULTS['routes.upstream.http2']
  }
}

/** The members of an upstream in any of its forms; undefined when one of them is invalid (an issue says why). */
function resolveMembers (u: ParsedUpstream, at: Path, options: ResolveOptions, issues: ConfigIssue[]): MemberSpec[] | undefined {
  if (typeof u === 'function') {
    const target = resolveHandler(u, at, options.modules, issues)
    return target === undefined ? undefined : [{ kind: 'handler', id: handlerId(u), target }]
  }
  if (!Array.isArray(u) && u.fetch !== undefined) {
    return [{ kind: 'handler', id: handlerId(u.fetch), target: { kind: 'fetch', fetch: u.fetch } }]
  }
  const list = Array.isArray(u) ? u : (u.nodes ?? [{ handler: u.handler! }])
  const listAt = Array.isArray(u) ? at : u.nodes !== undefined ? [...at, 'nodes'] : at
  const members: MemberSpec[] = []
  for (let i = 0; i < list.length; i++) {
    const m = list[i]
    if (typeof m === 'string') {
      const url = new URL(m)
      members.push({ kind: 'node', id: url.origin, origin: url.origin, protocol: url.protocol as 'http:' | 'https:' })
    } else {
      const memberAt = !Array.isArray(u) && u.nodes === undefined ? [...at, 'handler'] : [...listAt, i, 'handler']
      const target = resolveHandler(m.handler, memberAt, options.modules, issues)
      if (target !== undefined) members.push({ kind: 'handler', id: handlerId(m.handler), target })
    }
  }
  return members.length === list.length ? members : undefined
}

/** RFC 6797 §6.1: `max-age=N[; includeSubDomains][; preload]`. */
function hstsValue (h: ParsedRoute['hsts']): string | null {
  if (h === undefined || h === false) return null
  const o = h === true ? {} : h
  const maxAge = Math.floor((o.maxAge ?? DEFAULTS['routes.hsts.maxAge']) / 1000)
  const sub = o.includeSubDomains ?? DEFAULTS['routes.hsts.includeSubDomains']
  const preload = o.preload ?? DEFAULTS['routes.hsts.preload']
  return `max-age=${maxAge}${sub ? '; includeSubDomains' : ''}${preload ? '; preload' : ''}`
}
