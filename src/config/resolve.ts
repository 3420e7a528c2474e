/**
 * The second config pass: turns the shape-checked config into the resolved form (resolved.ts). Expands the short
 * form (`upstreams:`) into routes on path "/", applies the defaults (defaults.ts, the one table of them), and checks
 * meaning (valid host keys, no two routes claiming the same host + path, handlers that exist, files that load).
 * Every problem is collected with its key path; none is thrown one at a time.
 *
 * Loading handler modules (handler-modules.ts) and reading TLS files (tls-files.ts) are their own rooms; this one
 * only decides what the config means.
 */
import type { ParsedConfig, ParsedPool, ParsedRoute, ParsedUpstream } from './schema.js'
import { DEFAULTS } from './defaults.js'
import { handlerId, resolveHandler, type HandlerModules } from './handler-modules.js'
import { resolveServerTls, resolveUpstreamTls } from './tls-files.js'
import { resolveRules } from './resolve-rules.js'
import { normalizeHostKey } from '../routing/host.js'
import {
  RESOLVED, type ConfigIssue, type HashKey, type MemberSpec, type ResolvedAdmin, type ResolvedCache, type ResolvedConfig,
  type ResolvedHeaderOptions, type ResolvedHealthCheck, type ResolvedOutlier, type ResolvedRetry, type ResolvedRoute,
  type ResolvedSticky, type ResolvedTimeouts, type ResolvedUpstream
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

  // Named pools first: routes refer to them. A pool that failed to resolve is null (its issues are reported once).
  const pools = new Map<string, ResolvedUpstream | null>()
  for (const [name, p] of Object.entries(cfg.pools ?? {})) {
    const scope = { key: `pool:${name}`, name, connectTimeout: baseTimeouts.connect, pools }
    pools.set(name, resolveUpstream(p, ['pools', name], options, issues, scope) ?? null)
  }

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
    const name = `${hosts.join(',')}${routePath === '/' ? '' : routePath}`
    const scope = { key: `route:${name}`, name, connectTimeout: route.timeouts?.connect ?? baseTimeouts.connect, pools }
    const rules = resolveRules(route, cfg, at, { baseDir: options.baseDir, issues })
    // A route that answers every request itself needs no upstream; one given anyway is never used.
    const answersAll = route.respond !== undefined || (route.redirect !== undefined && route.redirect.match === undefined)
    let upstream: ResolvedUpstream | null = null
    if (route.upstream === undefined) {
      if (!answersAll) issues.push({ path: [...at, 'upstream'], message: 'a route needs an upstream (or "respond", or "redirect" without "match")' })
    } else if (answersAll) {
      issues.push({ path: [...at, 'upstream'], message: `this route answers every request itself ("${route.respond !== undefined ? 'respond' : 'redirect'}"): its upstream would never be used` })
    } else {
      const resolved = resolveUpstream(route.upstream, at[0] === 'upstreams' ? at : [...at, 'upstream'], options, issues, scope)
      if (resolved === undefined) continue
      upstream = resolved
    }
    routes.push({
      name,
      hosts,
      path: routePath,
      stripPrefix: route.stripPrefix ?? DEFAULTS['routes.stripPrefix'],
      preserveHost: route.preserveHost ?? DEFAULTS['routes.preserveHost'],
      // securityHeaders brings HSTS along unless the route says its own.
      hsts: route.hsts === undefined && rules?.securityHeaders?.hsts != null ? rules.securityHeaders.hsts : hstsValue(route.hsts),
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
      cache: (route.cache ?? cacheOn) && upstream !== null,
      rules
    })
  }

  const tls = resolveServerTls(cfg, options.baseDir, routes.flatMap((r) => r.hosts), issues)
  ;(cfg.listen ?? []).forEach((l, i) => {
    if (l.tls === true && cfg.tls === undefined) issues.push({ path: ['listen', i, 'tls'], message: 'a TLS listener needs certificates: add tls.certificates or tls.acme' })
    if (l.tls === true && l.redirectToHttps !== undefined && l.redirectToHttps !== false) issues.push({ path: ['listen', i, 'redirectToHttps'], message: 'only a cleartext listener redirects to https' })
  })
  if (tls?.acme != null) {
    const listeners = (cfg.listen ?? DEFAULTS.listen) as readonly { port: number, tls?: boolean }[]
    if (tls.acme.challenges.includes('http-01') && !listeners.some((l) => l.tls !== true)) {
      issues.push({ path: ['tls', 'acme', 'challenges'], message: 'http-01 is answered on a cleartext listener (port 80 in production): add one, or use challenges: [tls-alpn-01]' })
    }
    if (!listeners.some((l) => l.tls === true)) issues.push({ path: ['tls', 'acme'], message: 'automatic HTTPS needs a TLS listener to serve its certificates: add one with tls: true' })
  }
  const cache = routes.some((r) => r.cache) ? resolveCache(cfg, issues) : null
  const admin = resolveAdmin(cfg, issues)
  if (issues.length > 0) return { issues }
  const s = cfg.server ?? {}
  return {
    config: {
      [RESOLVED]: true,
      listenDefaulted: cfg.listen === undefined,
      listen: (cfg.listen ?? DEFAULTS.listen).map((l: { host?: string, port: number, tls?: boolean, http2?: boolean, redirectToHttps?: boolean | number, maxConnections?: number, maxConnectionsPerIp?: number, backlog?: number }) => {
        const tlsOn = l.tls ?? DEFAULTS['listen.tls']
        return {
          host: l.host ?? DEFAULTS['listen.host'],
          port: l.port,
          tls: tlsOn,
          // TLS listeners offer h2 by ALPN unless told not to; cleartext h2c is opt-in.
          http2: l.http2 ?? tlsOn,
          redirectToHttps: l.redirectToHttps === true ? 443 : typeof l.redirectToHttps === 'number' ? l.redirectToHttps : false,
          maxConnections: l.maxConnections ?? 0,
          maxConnectionsPerIp: l.maxConnectionsPerIp ?? 0,
          backlog: l.backlog ?? DEFAULTS['listen.backlog']
        }
      }),
      tls,
      routes,
      server: {
        drainTimeout: s.drainTimeout ?? DEFAULTS['server.drainTimeout'],
        keepAliveTimeout: s.keepAliveTimeout ?? DEFAULTS['server.keepAliveTimeout'],
        headersTimeout: s.headersTimeout ?? DEFAULTS['server.headersTimeout'],
        requestTimeout: s.requestTimeout ?? DEFAULTS['server.requestTimeout'],
        bodyTimeout: s.bodyTimeout ?? DEFAULTS['server.bodyTimeout'],
        maxHeaderSize: s.maxHeaderSize ?? DEFAULTS['server.maxHeaderSize']
      },
      limits: { maxRequestBody: cfg.limits?.maxRequestBody ?? null },
      trustedProxies: cfg.trustedProxies ?? DEFAULTS.trustedProxies,
      paths: {
        normalize: cfg.paths?.normalize ?? DEFAULTS['paths.normalize'],
        rejectEncodedSlash: cfg.paths?.rejectEncodedSlash ?? DEFAULTS['paths.rejectEncodedSlash'],
        mergeSlashes: cfg.paths?.mergeSlashes ?? DEFAULTS['paths.mergeSlashes']
      },
      log: { level: cfg.log?.level ?? DEFAULTS['log.level'], access: cfg.log?.access ?? DEFAULTS['log.access'], format: cfg.log?.format ?? DEFAULTS['log.format'] },
      tracing: cfg.tracing === undefined || cfg.tracing === false
        ? null
        : {
            start: (cfg.tracing === true ? undefined : cfg.tracing.start) ?? DEFAULTS['tracing.start'],
            sampled: (cfg.tracing === true ? undefined : cfg.tracing.sampled) ?? DEFAULTS['tracing.sampled']
          },
      hooks: cfg.hooks,
      cache,
      admin,
      watch: cfg.watch ?? DEFAULTS.watch,
      workers: cfg.workers ?? DEFAULTS.workers
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
  return { host: a.host ?? DEFAULTS['admin.host'], port: a.port, token, metrics: a.metrics ?? DEFAULTS['admin.metrics'] }
}

/** "/api/" and "/api" claim the same prefix; keep one spelling without the trailing slash. */
function normalizeRoutePath (p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.replace(/\/+$/, '') || '/' : p
}

/** Settings that live on a pool; an upstream naming a pool takes them from it. */
const POOL_SETTING_KEYS = [
  'policy', 'hashKey', 'weights', 'sticky', 'healthCheck', 'outlier', 'retry', 'maxRequests', 'maxRequestsPerNode', 'queue',
  'slowStart', 'panicThreshold', 'dnsRefresh', 'failTimeout', 'maxConnections', 'keepAlive', 'tls', 'http2'
] as const

/** Where an upstream is resolved: its route's name and connect timeout, and the named pools resolved so far. */
interface UpstreamScope {
  key: string
  name: string
  connectTimeout: number
  pools: ReadonlyMap<string, ResolvedUpstream | null>
}

function resolveUpstream (u: ParsedUpstream | ParsedPool, at: Path, options: ResolveOptions, issues: ConfigIssue[], scope: UpstreamScope): ResolvedUpstream | undefined {
  const opts: Partial<ParsedPool> & { pool?: string } = Array.isArray(u) || typeof u === 'function' ? {} : u
  if (opts.pool !== undefined) {
    const extra = POOL_SETTING_KEYS.filter((k) => opts[k] !== undefined)
    for (const k of extra) issues.push({ path: [...at, k], message: `an upstream naming a pool takes its settings from it: move "${k}" under pools.${opts.pool}` })
    const pool = scope.pools.get(opts.pool)
    if (pool === undefined) {
      const known = [...scope.pools.keys()]
      issues.push({ path: [...at, 'pool'], message: `no pool "${opts.pool}" under pools:${known.length === 0 ? ' (there are none)' : ` (known: ${known.join(', ')})`}`, value: opts.pool })
    }
    return pool ?? undefined
  }
  const members = resolveMembers(u as ParsedUpstream, at, options, issues, opts)
  if (members === undefined) return undefined
  const failTimeout = opts.failTimeout ?? DEFAULTS['routes.upstream.failTimeout']
  return {
    key: scope.key,
    name: scope.name,
    members,
    policy: opts.policy ?? DEFAULTS['routes.upstream.policy'],
    hashKey: opts.hashKey === undefined ? null : parseHashKey(opts.hashKey),
    sticky: resolveSticky(opts.sticky, [...at, 'sticky'], issues),
    healthCheck: resolveHealthCheck(opts.healthCheck),
    outlier: resolveOutlier(opts.outlier, failTimeout),
    retry: resolveRetry(opts.retry),
    maxRequests: opts.maxRequests ?? 0,
    queue: {
      size: opts.queue?.size ?? DEFAULTS['routes.upstream.queue.size'],
      timeout: opts.queue?.timeout ?? DEFAULTS['routes.upstream.queue.timeout']
    },
    slowStart: opts.slowStart ?? DEFAULTS['routes.upstream.slowStart'],
    panicThreshold: opts.panicThreshold ?? DEFAULTS['routes.upstream.panicThreshold'],
    dnsRefresh: opts.dnsRefresh ?? DEFAULTS['routes.upstream.dnsRefresh'],
    connectTimeout: scope.connectTimeout,
    maxConnections: opts.maxConnections ?? DEFAULTS['routes.upstream.maxConnections'],
    keepAlive: opts.keepAlive ?? DEFAULTS['routes.upstream.keepAlive'],
    tls: resolveUpstreamTls(opts.tls, options.baseDir, [...at, 'tls'], issues),
    http2: opts.http2 ?? DEFAULTS['routes.upstream.http2']
  }
}

/** "header:X-User" → { kind: header, name: x-user }. The schema has checked the form. */
function parseHashKey (key: string): HashKey {
  if (key === 'client-ip' || key === 'uri') return { kind: key }
  const colon = key.indexOf(':')
  const kind = key.slice(0, colon) as 'header' | 'cookie' | 'query'
  const name = key.slice(colon + 1)
  return { kind, name: kind === 'header' ? name.toLowerCase() : name }
}

function resolveSticky (s: ParsedPool['sticky'], at: Path, issues: ConfigIssue[]): ResolvedSticky | null {
  if (s === undefined) return null
  let secret: string | null = null
  if (s.secretEnv !== undefined) {
    secret = process.env[s.secretEnv] ?? null
    if (secret === null || secret === '') issues.push({ path: [...at, 'secretEnv'], message: `environment variable ${s.secretEnv} is not set`, value: s.secretEnv })
  }
  const sameSite = s.sameSite ?? DEFAULTS['routes.upstream.sticky.sameSite']
  if (sameSite === 'None' && s.secure === false) issues.push({ path: [...at, 'sameSite'], message: 'SameSite=None needs a Secure cookie (secure: true or left out)' })
  return {
    cookie: s.cookie,
    ttl: s.ttl ?? null,
    secure: s.secure ?? (sameSite === 'None' ? true : null),
    httpOnly: s.httpOnly ?? DEFAULTS['routes.upstream.sticky.httpOnly'],
    sameSite,
    path: s.path ?? DEFAULTS['routes.upstream.sticky.path'],
    secret
  }
}

/** "200-399,404" → [[200, 399], [404, 404]]. */
export function parseStatusRanges (v: string | number): [number, number][] {
  if (typeof v === 'number') return [[v, v]]
  return v.split(',').map((part) => {
    const [lo, hi] = part.split('-').map((x) => Number(x.trim()))
    return [lo, hi ?? lo]
  })
}

function resolveHealthCheck (h: ParsedPool['healthCheck']): ResolvedHealthCheck | null {
  if (h === undefined) return null
  return {
    path: h.path,
    interval: h.interval ?? DEFAULTS['routes.upstream.healthCheck.interval'],
    timeout: h.timeout ?? DEFAULTS['routes.upstream.healthCheck.timeout'],
    unhealthyAfter: h.unhealthyAfter ?? DEFAULTS['routes.upstream.healthCheck.unhealthyAfter'],
    healthyAfter: h.healthyAfter ?? DEFAULTS['routes.upstream.healthCheck.healthyAfter'],
    expectStatus: parseStatusRanges(h.expectStatus ?? DEFAULTS['routes.upstream.healthCheck.expectStatus']),
    expectBody: h.expectBody === undefined ? null : new RegExp(h.expectBody),
    headers: Object.entries(h.headers ?? {}).flat(),
    host: h.host ?? null
  }
}

/** `outlier` settings, or the simple form `failTimeout` (one connection failure ejects for failTimeout), or null. */
function resolveOutlier (o: ParsedPool['outlier'], failTimeout: number): ResolvedOutlier | null {
  if (o === undefined) {
    if (failTimeout <= 0) return null
    return {
      consecutiveFailures: 1,
      statuses: [],
      countResets: false,
      baseEjectionTime: failTimeout,
      maxEjectionTime: failTimeout,
      maxEjectedPercent: DEFAULTS['routes.upstream.outlier.maxEjectedPercent']
    }
  }
  const base = o.baseEjectionTime ?? DEFAULTS['routes.upstream.outlier.baseEjectionTime']
  return {
    consecutiveFailures: o.consecutiveFailures ?? DEFAULTS['routes.upstream.outlier.consecutiveFailures'],
    statuses: o.statuses ?? DEFAULTS['routes.upstream.outlier.statuses'],
    countResets: true,
    baseEjectionTime: base,
    maxEjectionTime: Math.max(base, o.maxEjectionTime ?? DEFAULTS['routes.upstream.outlier.maxEjectionTime']),
    maxEjectedPercent: o.maxEjectedPercent ?? DEFAULTS['routes.upstream.outlier.maxEjectedPercent']
  }
}

function resolveRetry (r: ParsedPool['retry']): ResolvedRetry {
  const on = r?.on ?? DEFAULTS['routes.upstream.retry.on']
  const backoff = r?.backoff ?? DEFAULTS['routes.upstream.retry.backoff']
  return {
    attempts: r?.attempts ?? DEFAULTS['routes.upstream.retry.attempts'],
    connectFailure: on.includes('connect-failure'),
    reset: on.includes('reset'),
    timeout: on.includes('timeout'),
    statuses: on.filter((c): c is number => typeof c === 'number'),
    backoff,
    maxBackoff: Math.max(backoff, r?.maxBackoff ?? DEFAULTS['routes.upstream.retry.maxBackoff']),
    budget: (r?.budget ?? DEFAULTS['routes.upstream.retry.budget']) / 100,
    bufferBody: r?.bufferBody ?? DEFAULTS['routes.upstream.retry.bufferBody']
  }
}

/** The members of an upstream in any of its forms; undefined when one of them is invalid (an issue says why). */
function resolveMembers (u: ParsedUpstream, at: Path, options: ResolveOptions, issues: ConfigIssue[], opts: Partial<ParsedPool>): MemberSpec[] | undefined {
  const perNode = opts.maxRequestsPerNode ?? 0
  const defaultWeight = DEFAULTS['routes.upstream.nodes.weight']
  if (typeof u === 'function') {
    const target = resolveHandler(u, at, options.modules, issues)
    return target === undefined ? undefined : [{ kind: 'handler', id: handlerId(u), target, weight: defaultWeight, maxRequests: perNode }]
  }
  if (!Array.isArray(u) && u.fetch !== undefined) {
    return [{ kind: 'handler', id: handlerId(u.fetch), target: { kind: 'fetch', fetch: u.fetch }, weight: defaultWeight, maxRequests: perNode }]
  }
  const list = Array.isArray(u) ? u : (u.nodes ?? [{ handler: u.handler! }])
  const listAt = Array.isArray(u) ? at : u.nodes !== undefined ? [...at, 'nodes'] : at
  const weights = new Map(Object.entries(opts.weights ?? {}))
  const members: MemberSpec[] = []
  for (let i = 0; i < list.length; i++) {
    const m = list[i]
    if (typeof m === 'string' || 'url' in m) {
      const url = new URL(typeof m === 'string' ? m : m.url)
      const listed = typeof m === 'string' ? m : m.url
      const weight = (typeof m === 'string' ? undefined : m.weight) ?? weights.get(listed) ?? weights.get(url.origin) ?? defaultWeight
      weights.delete(listed)
      weights.delete(url.origin)
      const id = url.origin
      if (members.some((x) => x.id === id)) issues.push({ path: [...listAt, i], message: `node ${id} is listed twice`, value: listed })
      members.push({ kind: 'node', id, origin: url.origin, protocol: url.protocol as 'http:' | 'https:', weight, maxRequests: (typeof m === 'string' ? undefined : m.maxRequests) ?? perNode })
    } else {
      const memberAt = !Array.isArray(u) && u.nodes === undefined ? [...at, 'handler'] : [...listAt, i, 'handler']
      const target = resolveHandler(m.handler, memberAt, options.modules, issues)
      if (target !== undefined) members.push({ kind: 'handler', id: handlerId(m.handler), target, weight: m.weight ?? defaultWeight, maxRequests: m.maxRequests ?? perNode })
    }
  }
  for (const k of weights.keys()) issues.push({ path: [...at, 'weights', k], message: 'names no node of this upstream', value: k })
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
