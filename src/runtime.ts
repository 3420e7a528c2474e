/**
 * What a resolved config compiles into, and the compiling: live upstreams (undici pools for nodes, in-memory
 * servers for handlers, a balancing pool per route), compiled hooks, and the route table that answers
 * `match(host, target)` with a `CompiledRoute`. A `Runtime` is immutable; a reload compiles a new one and swaps it
 * whole (proxy.ts), so a request keeps the runtime it started with.
 *
 * Route shapes: `RouteConfig` (as written) → `ResolvedRoute` (defaults applied, files read) → `CompiledRoute`
 * (here: with its live pool, precomputed header and dispatch options, and the cache when it caches).
 */
import { UpstreamPool } from './balancer/pool.js'
import type { MemberSpec, ResolvedConfig, ResolvedRoute } from './config/resolved.js'
import type { HttpCache } from './cache/http-cache.js'
import { compileHooks, type CompiledHooks } from './hooks.js'
import type { Logger } from './observability/logger.js'
import { Router } from './routing/router.js'
import type { RequestHeaderOptions } from './upstream/headers.js'
import { InProcessUpstream } from './upstream/in-process.js'
import { RemoteNode } from './upstream/remote.js'
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

/** A compiled runtime and the upstreams it opened (closed when it is replaced). */
export interface CompiledRuntime {
  runtime: Runtime
  upstreams: Upstream[]
}

/** Compiles a config. Nodes with identical settings share one undici pool; each handler gets one in-memory server. */
export function compileRuntime (config: ResolvedConfig, logger: Logger, cache: HttpCache | null): CompiledRuntime {
  const nodes = new Map<string, Upstream>()
  const handlers = new Map<unknown, Upstream>()
  const tlsIds = new Map<object, number>()
  const upstreams: Upstream[] = []
  const memberFor = (m: MemberSpec, route: ResolvedRoute): Upstream => {
    if (m.kind === 'node') {
      const u = route.upstream
      const tlsKey = m.protocol === 'https:' ? tlsIds.get(u.tls) ?? tlsIds.set(u.tls, tlsIds.size).get(u.tls) : ''
      const key = `${m.origin}|${route.timeouts.connect}|${u.maxConnections}|${u.keepAlive}|${tlsKey}|${u.http2}`
      let node = nodes.get(key)
      if (node === undefined) {
        if (m.protocol === 'https:' && !u.tls.rejectUnauthorized) {
          logger.warn({ upstream: m.origin, route: route.name }, 'insecureSkipVerify: the certificate of this node is NOT verified; anyone on the path can impersonate it')
        }
        node = new RemoteNode(m.origin, {
          connectTimeout: route.timeouts.connect,
          maxConnections: u.maxConnections,
          keepAlive: u.keepAlive,
          ...(m.protocol === 'https:' ? { tls: u.tls, http2: u.http2 } : {})
        })
        nodes.set(key, node)
        upstreams.push(node)
      }
      return node
    }
    const fn = m.target.kind === 'listener' ? m.target.listener : m.target.kind === 'fetch' ? m.target.fetch : m.target.server
    let h = handlers.get(fn)
    if (h === undefined) {
      h = new InProcessUpstream(m.id, m.target, { onHandlerError: (err) => logger.error({ err, upstream: m.id }, 'handler failed') })
      handlers.set(fn, h)
      upstreams.push(h)
    }
    return h
  }
  const routes: CompiledRoute[] = config.routes.map((r) => ({
    name: r.name,
    hosts: r.hosts,
    path: r.path,
    stripPrefix: r.stripPrefix,
    upstream: new UpstreamPool(r.upstream.members.map((m) => memberFor(m, r)), { failTimeout: r.upstream.failTimeout, policy: r.upstream.policy }),
    headerOptions: { preserveHost: r.preserveHost, ...r.headers },
    dispatchOptions: { headersTimeout: r.timeouts.response, bodyTimeout: r.timeouts.idle },
    hsts: r.hsts,
    cache: r.cache ? cache : null
  }))
  return {
    runtime: { router: new Router(routes), maxRequestBody: config.limits.maxRequestBody, hooks: compileHooks(config.hooks) },
    upstreams
  }
}
