/**
 * The Proxy: a configured reverse proxy's lifecycle — start (listeners and the admin API), reload (a new runtime
 * swapped in whole), close (drain, then release everything). The rooms it drives own the rest: runtime.ts compiles a
 * config, pipeline.ts serves a request, server/listeners.ts and server/connections.ts hold the sockets, server/admin.ts
 * the admin API, cache/lifecycle.ts the cache across reloads.
 */
import { EventEmitter } from 'node:events'
import type http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { CertificateStore } from './server/certificates.js'
import { isResolvedConfig, type ResolvedConfig } from './config/resolved.js'
import { handleRequest, handleUpgrade, type NextFunction } from './pipeline.js'
import { loadConfigObjectSync } from './config/load.js'
import type { PorticoConfig } from './config/schema.js'
import type { ExchangeContext } from './exchange.js'
import { silentLogger, type Logger } from './observability/logger.js'
import { compileRuntime, type CompiledRuntime } from './runtime.js'
import { PoolRegistry } from './balancer/registry.js'
import type { HealthEvent, PoolSnapshot } from './balancer/pool.js'
import type { Lookup } from './balancer/dns.js'
import { purgeFilter, type PurgeRequest } from './cache/key.js'
import type { HttpCache } from './cache/http-cache.js'
import { CacheLifecycle } from './cache/lifecycle.js'
import { createAdminServer } from './server/admin.js'
import { Connections, type AnyServer } from './server/connections.js'
import { createListener, listenOn, type ListeningAddress } from './server/listeners.js'
import { RuleResources } from './rules/resources.js'

export type { ListeningAddress } from './server/listeners.js'

/** One host of the compiled route table. */
export interface RouteTableEntry {
  host: string
  kind: 'exact' | 'prefix' | 'wildcard' | 'catch-all'
  paths: { path: string, stripPrefix: boolean, upstream: string, cache: boolean }[]
}

/** Options beyond the config. */
export interface ProxyOptions {
  logger?: Logger
  /**
   * How DNS-named nodes are resolved (re-resolved every `dnsRefresh`): the system resolver by default. Service
   * discovery can answer here instead; tests use it to move a name between loopback addresses.
   */
  lookup?: Lookup
}

export type { HealthEvent, PoolSnapshot }

/** Events a Proxy emits. */
export interface ProxyEvents {
  /** A node of a pool changed health (healthy, unhealthy, ejected), with the reason. */
  health: [HealthEvent]
}

/**
 * A configured reverse proxy. Create with `createProxy` (or `new Proxy(resolvedConfig)`). It emits `health` events
 * (ProxyEvents) when a pool's node changes health.
 */
export class Proxy extends EventEmitter<ProxyEvents> {
  #config: ResolvedConfig
  #live: CompiledRuntime
  readonly #pools: PoolRegistry
  readonly #resources: RuleResources
  readonly #logger: Logger
  readonly #servers: AnyServer[] = []
  readonly #connections = new Connections()
  readonly #cache: CacheLifecycle
  #certificates: CertificateStore | null = null
  #admin: { server: http.Server, address: ListeningAddress } | null = null
  #closed: Promise<void> | null = null
  readonly #ctx: ExchangeContext

  constructor (config: ResolvedConfig, options: ProxyOptions = {}) {
    super()
    this.#config = config
    this.#logger = options.logger ?? silentLogger()
    this.#cache = new CacheLifecycle(config.cache, this.#logger)
    this.#pools = new PoolRegistry(this.#logger, this, options.lookup)
    this.#resources = new RuleResources(this.#logger)
    this.#live = compileRuntime(config, this.#pools, this.#cache.cache, this.#resources, this.#logger)
    this.#ctx = {
      logger: this.#logger,
      accessLog: config.log.access,
      isDraining: () => this.#connections.draining,
      tunnels: this.#connections.tunnels,
      runtime: () => this.#live.runtime
    }
  }

  /** The resolved config in force. */
  get config (): ResolvedConfig {
    return this.#config
  }

  /** The logger requests are logged to. */
  get logger (): Logger {
    return this.#logger
  }

  /** The compiled route table, most specific host first (what `portico check` prints). */
  describeRoutes (): RouteTableEntry[] {
    return this.#live.runtime.router.describe().map((h) => ({
      host: h.host,
      kind: h.kind,
      paths: h.routes.map((r) => ({ path: r.path, stripPrefix: r.stripPrefix, upstream: r.upstream?.id ?? (r.rules !== null ? 'answered by the route' : 'none'), cache: r.cache !== null }))
    }))
  }

  /**
   * The request handler: `(req, res, next?)`. Usable as a `node:http` request listener or as Connect/Express
   * middleware; with `next`, unmatched requests fall through instead of getting 404.
   */
  readonly handler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void => {
    handleRequest(this.#live.runtime, this.#ctx, req, res, next)
  }

  /**
   * The upgrade handler, for `server.on('upgrade', proxy.upgradeHandler)`: routes a WebSocket (or other
   * `Upgrade:`) handshake like a request and tunnels it to the chosen node. With `next`, an unmatched handshake
   * is left to it untouched; without, it is answered 404 and closed.
   */
  readonly upgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, next?: NextFunction): void => {
    handleUpgrade(this.#live.runtime, this.#ctx, req, socket, head, next)
  }

  /** Starts every configured listener and the admin API. Resolves with the bound addresses (port 0 becomes the real port). */
  async listen (): Promise<ListeningAddress[]> {
    const out: ListeningAddress[] = []
    for (const l of this.#config.listen) {
      const server = createListener(l, {
        server: this.#config.server,
        logger: this.#logger,
        connections: this.#connections,
        certificates: () => (this.#certificates ??= new CertificateStore(this.#config.tls!, this.#logger)),
        handler: this.handler,
        upgradeHandler: this.upgradeHandler,
        h2Upgrade: (req, res) => handleUpgrade(this.#live.runtime, this.#ctx, req, res.stream, Buffer.alloc(0), undefined, res),
        trust: () => this.#live.runtime.trust
      })
      out.push(await listenOn(server, l.port, l.host, l.tls ? 'https' : 'http'))
      this.#servers.push(server)
    }
    const admin = this.#config.admin
    if (admin !== null && this.#admin === null) {
      const server = createAdminServer(this, admin.token, this.#logger)
      this.#admin = { server, address: await listenOn(server, admin.port, admin.host, 'http') }
    }
    return out
  }

  /**
   * Every pool and its nodes: health (healthy, unhealthy, ejected, draining), requests in flight, ejections, the
   * last error, and the pool's counters (requests, retries, retries the budget refused, 503s). A snapshot.
   */
  pools (): PoolSnapshot[] {
    return this.#pools.snapshot()
  }

  /** Client connections the listeners' limits refused since start (maxConnections, maxConnectionsPerIp). */
  refusedConnections (): { maxConnections: number, maxConnectionsPerIp: number } {
    return { ...this.#connections.refused }
  }

  /** The admin API's address once listening, or null. */
  get adminAddress (): ListeningAddress | null {
    return this.#admin?.address ?? null
  }

  /** The proxy cache, or null when no route caches. */
  get cache (): HttpCache | null {
    return this.#cache.cache
  }

  /**
   * Purges the cache: an exact URL (every Vary variant), a host and path prefix, or a surrogate key / cache tag
   * (from Surrogate-Key or Cache-Tag). With a Redis store, every instance sharing it sees the purge. Resolves to
   * the number of stored responses removed (0 without a cache).
   */
  async purge (filter: PurgeRequest): Promise<number> {
    const cache = this.#cache.cache
    if (cache === null) return 0
    return await cache.purge(purgeFilter(filter))
  }

  /** Cache counters and store size, or null without a cache. */
  cacheStats (): object | null {
    const cache = this.#cache.cache
    if (cache === null) return null
    return { store: cache.store.name, bytes: cache.store.bytes ?? null, ...cache.stats }
  }

  /** Reloads TLS certificates from disk (SIGHUP); a certificate that fails to load keeps the old one. */
  reloadCertificates (): void {
    this.#certificates?.reload()
  }

  /**
   * Swaps in a new config (an options object, validated like `createProxy`'s, or a resolved config from the
   * loaders): new requests use it at once; in-flight ones finish where they are. Pools that stay keep their nodes'
   * state (health, counts); a node the new config drops finishes its in-flight requests. Listeners are unchanged.
   * Throws ConfigError and keeps the old config when the new one is invalid.
   */
  async reload (options: ResolvedConfig | PorticoConfig): Promise<void> {
    const config = isResolvedConfig(options) ? options : loadConfigObjectSync(options)
    const cache = this.#cache.reload(config.cache, config.server.drainTimeout)
    this.#live = compileRuntime(config, this.#pools, cache, this.#resources, this.#logger)
    this.#config = config
    this.#ctx.accessLog = config.log.access
    await this.#live.drained
  }

  /** True once `close` was called. */
  get draining (): boolean {
    return this.#connections.draining
  }

  /**
   * Stops accepting connections, lets in-flight exchanges and WebSocket tunnels finish for up to `drainTimeout` ms
   * (default: the config's server.drainTimeout), then closes what is left and the upstream pools. Idempotent.
   */
  close (options: { drainTimeout?: number } = {}): Promise<void> {
    this.#closed ??= this.#close(options.drainTimeout ?? this.#config.server.drainTimeout)
    return this.#closed
  }

  async #close (drainTimeout: number): Promise<void> {
    await this.#connections.drain(this.#servers, drainTimeout, this.#logger)
    this.#certificates?.close()
    if (this.#admin !== null) {
      const admin = this.#admin.server
      admin.closeAllConnections()
      await new Promise<void>((resolve) => admin.close(() => resolve()))
    }
    this.#cache.abortFills()
    await this.#pools.close()
    await this.#resources.close()
    await this.#cache.close()
  }
}
