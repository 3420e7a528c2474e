/**
 * The Proxy: a configured reverse proxy's lifecycle — start (listeners and the admin API), reload (a new runtime
 * swapped in whole), close (drain, then release everything). The rooms it drives own the rest: runtime.ts compiles a
 * config, pipeline.ts serves a request, server/listeners.ts and server/connections.ts hold the sockets, server/admin.ts
 * the admin API, cache/lifecycle.ts the cache across reloads.
 */
import { EventEmitter } from 'node:events'
import pino from 'pino'
import type http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { CertificateStore } from './server/certificates.js'
import { Http01Challenges } from './acme/http-01.js'
import type { AcmeChallenges, AcmeManager, ManagedCertificate } from './acme/manager.js'
import { TlsAlpn01Challenges } from './acme/tls-alpn-01.js'
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
import type { ProxyMetrics, MetricsSource } from './observability/metrics.js'
import { configReload } from './observability/channels.js'
import { explain, redactedConfig, type Explanation } from './server/admin-views.js'
import type { ResolvedListener } from './config/resolved.js'

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
  /**
   * Where the config comes from again when a reload names none (SIGHUP, a change of the file, the admin API's
   * POST /config/reload): the CLI reads its file. Without it such a reload answers that there is no source.
   */
  configSource?: () => Promise<ResolvedConfig>
  /** In a cluster worker: the admin listener on a port of its own (the primary serves the shared admin API). */
  adminExclusive?: boolean
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
  /** The listeners started, by identity (address, port, TLS, HTTP/2, redirect): a reload opens and closes them. */
  readonly #listeners = new Map<string, { server: AnyServer, listener: ResolvedListener, address: ListeningAddress }>()
  #listening = false
  readonly #configSource: (() => Promise<ResolvedConfig>) | null
  readonly #adminExclusive: boolean
  #metrics: ProxyMetrics | null = null
  readonly #connections = new Connections()
  readonly #cache: CacheLifecycle
  #certificates: CertificateStore | null = null
  /**
   * Automatic HTTPS: the pending challenges of the types `tls.acme.challenges` names (made with the proxy, so
   * listeners can answer them; the types are read at start) and the manager.
   */
  readonly #acmeChallenges: AcmeChallenges | null
  #acme: AcmeManager | null = null
  #admin: { server: http.Server, address: ListeningAddress } | null = null
  #closed: Promise<void> | null = null
  readonly #ctx: ExchangeContext

  constructor (config: ResolvedConfig, options: ProxyOptions = {}) {
    super()
    this.#config = config
    const acme = config.tls?.acme ?? null
    this.#acmeChallenges = acme === null
      ? null
      : {
          http01: acme.challenges.includes('http-01') ? new Http01Challenges() : null,
          tlsAlpn01: acme.challenges.includes('tls-alpn-01') ? new TlsAlpn01Challenges() : null
        }
    this.#logger = options.logger ?? silentLogger()
    this.#cache = new CacheLifecycle(config.cache, this.#logger)
    this.#pools = new PoolRegistry(this.#logger, this, options.lookup)
    this.#configSource = options.configSource ?? null
    this.#adminExclusive = options.adminExclusive ?? false
    this.#resources = new RuleResources(this.#logger)
    this.#live = compileRuntime(config, this.#pools, this.#cache.cache, this.#resources, this.#logger)
    this.#ctx = {
      logger: this.#logger,
      accessLog: config.log.access,
      accessLine: accessLineFor(config),
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
    this.#listening = true
    const out: ListeningAddress[] = []
    for (const l of this.#config.listen) out.push(await this.#open(l))
    await this.#startAcme(this.#config)
    const admin = this.#config.admin
    if (admin !== null && this.#admin === null) {
      // prom-client is loaded only by a proxy that serves metrics.
      if (admin.metrics) this.#metrics = new (await import('./observability/metrics.js')).ProxyMetrics(this.#metricsSource())
      const server = createAdminServer(this, admin.token, this.#logger)
      this.#admin = { server, address: await listenOn(server, admin.port, admin.host, 'http', this.#adminExclusive) }
    }
    return out
  }

  /** Every listener started, with its bound address. */
  get addresses (): ListeningAddress[] {
    return [...this.#listeners.values()].map((e) => e.address)
  }

  async #open (l: ResolvedListener): Promise<ListeningAddress> {
    // Made with the first TLS listener; without file certificates it first makes its self-signed default.
    if (l.tls) this.#certificates ??= await CertificateStore.create(this.#config.tls!, this.#logger)
    const server = createListener(l, {
      server: this.#config.server,
      logger: this.#logger,
      connections: this.#connections,
      certificates: () => this.#certificates!,
      acmeChallenges: this.#acmeChallenges,
      handler: this.handler,
      upgradeHandler: this.upgradeHandler,
      h2Upgrade: (req, res) => handleUpgrade(this.#live.runtime, this.#ctx, req, res.stream, Buffer.alloc(0), undefined, res),
      trust: () => this.#live.runtime.trust,
      token: this.#ctx
    })
    const address = await listenOn(server, l.port, l.host, l.tls ? 'https' : 'http', false, l.backlog)
    this.#listeners.set(listenerKey(l), { server, listener: l, address })
    return address
  }

  /**
   * Opens the listeners `config` has and the running proxy does not, and closes those it no longer has: they stop
   * accepting, and their open connections finish what they are doing (idle ones are closed). A config without
   * `listen` keeps the listeners as they are.
   */
  async #syncListeners (config: ResolvedConfig): Promise<void> {
    if (!this.#listening || this.#connections.draining || config.listenDefaulted) return
    const wanted = new Map(config.listen.map((l) => [listenerKey(l), l]))
    for (const [key, entry] of this.#listeners) {
      if (wanted.has(key)) continue
      this.#listeners.delete(key)
      entry.server.close()
      ;(entry.server as { closeIdleConnections?: () => void }).closeIdleConnections?.()
      this.#logger.info({ listener: entry.address.url }, 'listener closed by reload')
    }
    for (const [key, l] of wanted) {
      if (this.#listeners.has(key)) continue
      const address = await this.#open(l)
      this.#logger.info({ listener: address.url }, 'listener opened by reload')
    }
  }

  #metricsSource (): MetricsSource {
    return {
      token: this.#ctx,
      pools: () => this.pools(),
      cache: () => {
        const cache = this.#cache.cache
        return cache === null ? null : { bytes: cache.store.bytes ?? null, ...cache.stats }
      },
      connections: async () => await Promise.all([...this.#listeners.values()].map(async ({ server, listener, address }) => ({
        listener: `${address.host}:${address.port}`,
        protocol: listener.tls ? (listener.http2 ? 'https+h2' : 'https') : listener.http2 ? 'h2c' : 'http',
        count: await new Promise<number>((resolve) => (server as { getConnections: (cb: (err: Error | null, n: number) => void) => void }).getConnections((_err, n) => resolve(n ?? 0)))
      }))),
      routePool: (route) => this.#config.routes.find((r) => r.name === route)?.upstream?.name,
      refused: () => this.refusedConnections(),
      certificates: () => this.certificates()
    }
  }

  /** The metrics registry (a cluster worker hands it to the primary's aggregation), or null when metrics are off. */
  get metricsRegistry (): import('prom-client').Registry | null {
    return this.#metrics?.registry ?? null
  }

  /** The Prometheus exposition (GET /metrics), or null when metrics are off. */
  async metricsText (): Promise<{ contentType: string, text: string } | null> {
    const m = this.#metrics
    return m === null ? null : { contentType: m.contentType, text: await m.text() }
  }

  /** The running config as GET /config shows it: defaults applied, secrets redacted. */
  configView (): unknown {
    return redactedConfig(this.#config)
  }

  /** How a request for `host` and `path` would be routed (GET /routes/explain). */
  explain (host: string, path: string, method = 'GET'): Explanation {
    return explain(this.#live.runtime, this.#config, host, path, method)
  }

  /**
   * Reads the config source again (ProxyOptions.configSource) and swaps it in when it is valid; an invalid one
   * leaves the running config in force and is logged. `source` says who asked (signal, file, admin), for logs and
   * metrics.
   */
  async reloadFromSource (source: string): Promise<{ ok: true } | { ok: false, error: string }> {
    const read = this.#configSource
    if (read === null) return { ok: false, error: 'this proxy has no config source to read again (it was created from an object)' }
    let config: ResolvedConfig
    try {
      config = await read()
    } catch (err) {
      const error = (err as Error).message
      this.#logger.error({ err: error, source }, 'config reload failed; keeping the running config')
      if (configReload.hasSubscribers) configReload.publish({ proxy: this.#ctx, ok: false, error, source })
      return { ok: false, error }
    }
    await this.reload(config, source)
    return { ok: true }
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
  async reload (options: ResolvedConfig | PorticoConfig, source = 'api'): Promise<void> {
    let config: ResolvedConfig
    try {
      config = isResolvedConfig(options) ? options : loadConfigObjectSync(options)
    } catch (err) {
      if (configReload.hasSubscribers) configReload.publish({ proxy: this.#ctx, ok: false, error: (err as Error).message, source })
      throw err
    }
    const cache = this.#cache.reload(config.cache, config.server.drainTimeout)
    this.#live = compileRuntime(config, this.#pools, cache, this.#resources, this.#logger)
    this.#config = config
    this.#ctx.accessLog = config.log.access
    this.#ctx.accessLine = accessLineFor(config)
    await this.#syncListeners(config)
    await this.#startAcme(config)
    this.#logger.info({ source, routes: config.routes.length, listen: this.addresses.map((a) => a.url) }, 'config reloaded')
    if (configReload.hasSubscribers) configReload.publish({ proxy: this.#ctx, ok: true, source })
    await this.#live.drained
  }

  /**
   * Automatic HTTPS: once listening, orders (in the background) the names `config` manages that have no
   * certificate yet; a reload adds its new names. acme-client and the manager load only for a config with tls.acme.
   */
  async #startAcme (config: ResolvedConfig): Promise<void> {
    const acme = config.tls?.acme ?? null
    if (acme === null || this.#certificates === null || this.#acmeChallenges === null || this.#connections.draining) return
    if (this.#acme === null) {
      const [{ AcmeManager }, { openAcmeStorage }] = await Promise.all([import('./acme/manager.js'), import('./acme/storage.js')])
      this.#acme = new AcmeManager(acme, await openAcmeStorage(acme.storage), this.#certificates, this.#acmeChallenges, this.#logger)
    }
    if (acme.hosts.length === 0 && acme.onDemand === null) this.#logger.warn({}, 'tls.acme manages no names: the routes have no exact host names and tls.acme.hosts is not set')
    if (acme.unmanaged.length > 0) this.#logger.warn({ hosts: acme.unmanaged }, 'not managed by automatic HTTPS (wildcards and prefix keys need DNS-01): serve them with tls.certificates')
    await this.#acme.update(acme.hosts, acme.onDemand !== null)
    const manager = this.#acme
    this.#certificates.onUnknownName = acme.onDemand === null ? null : async (name) => await manager.onDemand(name)
  }

  /** The names automatic HTTPS manages and their certificates (empty without tls.acme). */
  certificates (): ManagedCertificate[] {
    return this.#acme?.certificates() ?? []
  }

  /** True once `close` was called. */
  get draining (): boolean {
    return this.#connections.draining
  }

  /**
   * Stops accepting connections, lets in-flight exchanges and WebSocket tunnels finish for up to `drainTimeout` ms
   * (default: the config's server.drainTimeout), then closes what is left and the upstream pools. Idempotent.
   * `acceptFor` ms: keep accepting for that long first, answering with `Connection: close` (a cluster worker).
   */
  close (options: { drainTimeout?: number, acceptFor?: number } = {}): Promise<void> {
    this.#closed ??= this.#close(options.drainTimeout ?? this.#config.server.drainTimeout, options.acceptFor ?? 0)
    return this.#closed
  }

  async #close (drainTimeout: number, acceptFor: number): Promise<void> {
    this.#metrics?.close()
    await this.#connections.drain([...this.#listeners.values()].map((e) => e.server), drainTimeout, this.#logger, acceptFor)
    this.#certificates?.close()
    await this.#acme?.close()
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

/** A listener's identity across reloads: the same address, port and protocol settings keep the same server. */
function listenerKey (l: ResolvedListener): string {
  return `${l.host}|${l.port}|${l.tls}|${l.http2}|${l.redirectToHttps}|${l.maxConnections}|${l.maxConnectionsPerIp}|${l.backlog}`
}

/** Standard output for combined access lines, opened once (buffered, flushed on exit like the logger). */
let combinedOut: ReturnType<typeof pino.destination> | null = null

/** Where combined access lines go, or null for JSON lines through the logger. */
function accessLineFor (config: ResolvedConfig): ((line: string) => void) | null {
  if (config.log.format !== 'combined') return null
  if (combinedOut === null) {
    const dest = combinedOut = pino.destination({ dest: 1, sync: false })
    process.once('exit', () => { try { dest.flushSync() } catch { /* nothing left to write, or stdout gone */ } })
  }
  const out = combinedOut
  return (line) => { out.write(line) }
}
