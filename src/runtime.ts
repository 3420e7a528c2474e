/**
 * What a resolved config compiles into, and the compiling: each route's pool (from the pool registry, which keeps
 * pools and their transports across reloads), compiled hooks, and the route table that answers
 * `match(host, target)` with a `CompiledRoute`. A `Runtime` is immutable; a reload compiles a new one and swaps it
 * whole (proxy.ts), so a request keeps the runtime it started with.
 *
 * Route shapes: `RouteConfig` (as written) → `ResolvedRoute` (defaults applied, files read) → `CompiledRoute`
 * (here: with its live pool, precomputed header and dispatch options, and the cache when it caches).
 */
import type { PoolRegistry } from './balancer/registry.js'
import type { UpstreamPool } from './balancer/pool.js'
import type { ResolvedConfig, ResolvedPaths } from './config/resolved.js'
import { AddressSet } from './http/address-set.js'
import type { HttpCache } from './cache/http-cache.js'
import { compileHooks, type CompiledHooks } from './hooks.js'
import { Router } from './routing/router.js'
import type { RequestHeaderOptions } from './upstream/headers.js'
import type { DispatchOptions } from './upstream/types.js'
import { RouteRules } from './rules/route-rules.js'
import type { RuleResources } from './rules/resources.js'
import type { Logger } from './observability/logger.js'

/** A route ready to serve: the resolved route plus its live upstream and precomputed options. */
export interface CompiledRoute {
  name: string
  hosts: readonly string[]
  path: string
  stripPrefix: boolean
  /** The route's pool (shared with other routes when it is a named pool); null when the route answers itself. */
  upstream: UpstreamPool | null
  headerOptions: RequestHeaderOptions
  dispatchOptions: DispatchOptions
  /** Strict-Transport-Security value for responses over TLS, or null. */
  hsts: string | null
  /** The Via entry added to responses ("1.1 portico"), or null when headers.via is false. */
  responseVia: string | null
  /** The proxy cache, when this route uses it. */
  cache: HttpCache | null
  /** The route's traffic rules, or null when it has none (then no rule code runs). */
  rules: RouteRules | null
}

/** Everything a request needs, swapped whole on reload. */
export interface Runtime {
  router: Router<CompiledRoute>
  maxRequestBody: number | null
  /** Longest pause in a request body (server.bodyTimeout), 0 for none. */
  bodyTimeout: number
  /** Trusted proxies, or null when none are configured (then the client is always the socket's peer). */
  trust: AddressSet | null
  /** How paths are normalised for routing. */
  paths: ResolvedPaths
  /** Null when no hooks are configured: then no hook code runs at all. */
  hooks: CompiledHooks | null
  /** W3C Trace Context settings, or null when tracing is off. */
  tracing: { start: boolean, sampled: boolean } | null
}

/** A compiled runtime, and a promise that settles when what the previous config used and this one does not has drained. */
export interface CompiledRuntime {
  runtime: Runtime
  drained: Promise<void>
}

/** Compiles a config. Pools come from the registry, which keeps each pool (and its nodes' state) across reloads. */
export function compileRuntime (config: ResolvedConfig, pools: PoolRegistry, cache: HttpCache | null, resources: RuleResources, logger: Logger): CompiledRuntime {
  const built = pools.build(config)
  const routes: CompiledRoute[] = config.routes.map((r) => ({
    name: r.name,
    hosts: r.hosts,
    path: r.path,
    stripPrefix: r.stripPrefix,
    upstream: r.upstream === null ? null : built.pools.get(r.upstream.key)!,
    headerOptions: { preserveHost: r.preserveHost, ...r.headers },
    dispatchOptions: { headersTimeout: r.timeouts.response, bodyTimeout: r.timeouts.idle },
    hsts: r.hsts,
    // The node answers over HTTP/1.1 (or HTTP/2 to https nodes with http2: then "2").
    responseVia: r.headers.via === false ? null : `${r.upstream?.http2 === true ? '2' : '1.1'} ${r.headers.via}`,
    cache: r.cache ? cache : null,
    rules: r.rules === null ? null : new RouteRules(r.rules, r, resources, logger)
  }))
  return {
    runtime: {
      router: new Router(routes),
      maxRequestBody: config.limits.maxRequestBody,
      bodyTimeout: config.server.bodyTimeout,
      trust: config.trustedProxies.length === 0 ? null : new AddressSet(config.trustedProxies),
      paths: config.paths,
      hooks: compileHooks(config.hooks),
      tracing: config.tracing
    },
    drained: built.drained
  }
}
