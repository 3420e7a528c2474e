/**
 * Prometheus metrics (docs/metrics.md), served by the admin listener's `GET /metrics`. Requests are counted by
 * subscribing to Portico's diagnostics channels (observability/channels.ts), so a proxy without metrics publishes
 * nothing and pays nothing; pools, the cache, connections and the process are read when Prometheus scrapes.
 *
 * Every label value comes from the config (route, pool and node names, listener addresses) or from a small fixed
 * set (method, status class, registry codes): never from the request, so the series stay bounded whatever clients
 * send. One registry per proxy, so proxies sharing a process never mix their figures.
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import client from 'prom-client'
import type { PoolSnapshot } from '../balancer/pool.js'
import type { AccessRecord } from './access-log.js'
import type { ConfigReloadMessage, RequestEndMessage, RequestStartMessage, TlsHandshakeMessage, UpstreamRetryMessage } from './channels.js'

/** What the metrics read at scrape time. */
export interface MetricsSource {
  /** The object channel messages of this proxy carry as `proxy`. */
  token: object
  pools: () => PoolSnapshot[]
  /** The cache's counters and bytes, or null without a cache. */
  cache: () => { bytes: number | null, hits: number, misses: number, revalidations: number, staleServed: number, stored: number, collapsed: number, bypassed: number, storeErrors: number, purged: number } | null
  /** Open client connections per listener. */
  connections: () => Promise<{ listener: string, protocol: string, count: number }[]>
  /** The pool each route sends to (route name → pool name). */
  routePool: (route: string) => string | undefined
  /** Client connections the listeners' limits refused. */
  refused: () => { maxConnections: number, maxConnectionsPerIp: number }
  /** The names automatic HTTPS manages (empty without tls.acme). */
  certificates: () => { name: string, state: string, notAfter: string | null }[]
}

/** Methods counted by name; any other is "other" (a client may send any token). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT'])

/** Registry codes that are rule outcomes, and the outcome they count as. */
const RULE_OUTCOMES: Record<string, string> = {
  PORTICO_ERR_FORBIDDEN: 'denied',
  PORTICO_ERR_UNAUTHORIZED: 'unauthorized',
  PORTICO_ERR_RATE_LIMITED: 'rate_limited',
  PORTICO_ERR_FORWARD_AUTH: 'auth_unavailable'
}

/** Latency buckets in seconds: 1 ms to 30 s. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The cache result a Cache-Status value (RFC 9211) stands for. */
function cacheResult (status: string): string {
  if (/;\s*hit\b/.test(status)) return /stale|fwd=stale/.test(status) ? 'stale' : 'hit'
  const fwd = /fwd=([a-z-]+)/.exec(status)?.[1]
  return fwd === undefined ? 'other' : fwd === 'uri-miss' || fwd === 'vary-miss' || fwd === 'miss' ? 'miss' : fwd
}

export class ProxyMetrics {
  readonly registry = new client.Registry()
  readonly #source: MetricsSource
  readonly #requests: client.Counter
  readonly #duration: client.Histogram
  readonly #upstreamDuration: client.Histogram
  #inFlightCount = 0
  readonly #errors: client.Counter
  readonly #rules: client.Counter
  readonly #cacheResults: client.Counter
  readonly #retries: client.Counter
  readonly #tls: client.Counter
  readonly #reloads: client.Counter
  readonly #lastReload: client.Gauge
  readonly #unsubscribe: (() => void)[] = []

  constructor (source: MetricsSource) {
    this.#source = source
    const registers = [this.registry]
    this.#requests = new client.Counter({ name: 'portico_requests_total', help: 'Requests answered, by route, method and status class.', labelNames: ['route', 'method', 'status_class'], registers })
    this.#duration = new client.Histogram({ name: 'portico_request_duration_seconds', help: 'Time from a request\'s arrival to the end of its answer.', labelNames: ['route'], buckets: BUCKETS, registers })
    this.#upstreamDuration = new client.Histogram({ name: 'portico_upstream_duration_seconds', help: 'Time from sending a request to a node to its response head.', labelNames: ['pool', 'node'], buckets: BUCKETS, registers })
    const inFlight = (): number => this.#inFlightCount
    new client.Gauge({ name: 'portico_requests_in_flight', help: 'Requests being answered now.', registers, collect () { this.set(inFlight()) } })
    this.#errors = new client.Counter({ name: 'portico_errors_total', help: 'Answers Portico made itself, by route and PORTICO_ERR_* code.', labelNames: ['route', 'code'], registers })
    this.#rules = new client.Counter({ name: 'portico_rule_outcomes_total', help: 'Requests the traffic rules stopped, by route and outcome.', labelNames: ['route', 'outcome'], registers })
    this.#cacheResults = new client.Counter({ name: 'portico_cache_requests_total', help: 'Requests on cached routes, by cache result (hit, stale, miss, bypass, ...).', labelNames: ['result'], registers })
    this.#retries = new client.Counter({ name: 'portico_upstream_retries_total', help: 'Attempts that failed and were retried on another node.', labelNames: ['pool'], registers })
    this.#tls = new client.Counter({ name: 'portico_tls_handshakes_total', help: 'TLS handshakes on the listeners, by result.', labelNames: ['listener', 'result'], registers })
    this.#reloads = new client.Counter({ name: 'portico_config_reloads_total', help: 'Config reloads tried, by result and source.', labelNames: ['result', 'source'], registers })
    this.#lastReload = new client.Gauge({ name: 'portico_config_last_reload_success_timestamp_seconds', help: 'When the config in force was loaded (Unix time).', registers })
    this.#lastReload.set(Date.now() / 1000)
    this.#scraped()
    client.collectDefaultMetrics({ register: this.registry, prefix: 'portico_' })

    const token = source.token
    this.#subscribe('portico:request:start', (m: RequestStartMessage) => { if (m.proxy === token) this.#inFlightCount++ })
    this.#subscribe('portico:request:end', (m: RequestEndMessage) => { if (m.proxy === token) this.#ended(m.record) })
    this.#subscribe('portico:tls:handshake', (m: TlsHandshakeMessage) => {
      if (m.proxy === token) this.#tls.inc({ listener: m.listener, result: m.ok ? 'ok' : 'failed' })
    })
    this.#subscribe('portico:config:reload', (m: ConfigReloadMessage) => {
      if (m.proxy !== token) return
      this.#reloads.inc({ result: m.ok ? 'ok' : 'failed', source: m.source })
      if (m.ok) this.#lastReload.set(Date.now() / 1000)
    })
    this.#subscribe('portico:upstream:retry', (m: UpstreamRetryMessage) => {
      if (m.proxy === token) this.#retries.inc({ pool: this.#poolOfNode(m.upstream) })
    })
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  async text (): Promise<string> {
    return await this.registry.metrics()
  }

  get contentType (): string {
    return this.registry.contentType
  }

  /** Stops counting (the proxy closed). */
  close (): void {
    for (const u of this.#unsubscribe) u()
    this.#unsubscribe.length = 0
  }

  #subscribe<M> (name: string, fn: (m: M) => void): void {
    const handler = (m: unknown): void => fn(m as M)
    diagnosticsChannel.subscribe(name, handler)
    this.#unsubscribe.push(() => diagnosticsChannel.unsubscribe(name, handler))
  }

  #ended (r: AccessRecord): void {
    // An exchange that started before the metrics subscribed ends without its start: never below zero.
    this.#inFlightCount = Math.max(0, this.#inFlightCount - 1)
    const route = r.route ?? '(none)'
    // 499 is a client that left: counted under 4xx, as it is logged.
    this.#requests.inc({ route, method: METHODS.has(r.method) ? r.method : 'other', status_class: `${Math.floor(r.status / 100)}xx` })
    this.#duration.observe({ route }, r.durationMs / 1000)
    if (r.upstream !== null && r.upstreamMs !== undefined) this.#upstreamDuration.observe({ pool: this.#source.routePool(route) ?? route, node: r.upstream }, r.upstreamMs / 1000)
    if (r.error !== undefined) {
      this.#errors.inc({ route, code: r.error })
      const outcome = RULE_OUTCOMES[r.error]
      if (outcome !== undefined) this.#rules.inc({ route, outcome })
    }
    if (r.cache !== undefined) this.#cacheResults.inc({ result: cacheResult(r.cache) })
  }

  #poolOfNode (node: string): string {
    for (const p of this.#source.pools()) if (p.nodes.some((n) => n.id === node)) return p.name
    return '(unknown)'
  }

  /** The figures read at scrape time: pools, the cache, connections. */
  #scraped (): void {
    const source = this.#source
    const registers = [this.registry]
    new client.Gauge({
      name: 'portico_upstream_node_healthy',
      help: 'Whether a node takes traffic (1) or is unhealthy, ejected or draining (0).',
      labelNames: ['pool', 'node', 'status'],
      registers,
      collect () {
        this.reset()
        for (const p of source.pools()) for (const n of p.nodes) this.set({ pool: p.name, node: n.id, status: n.status }, n.status === 'healthy' ? 1 : 0)
      }
    })
    new client.Gauge({
      name: 'portico_upstream_requests_in_flight',
      help: 'Requests in flight on a node.',
      labelNames: ['pool', 'node'],
      registers,
      collect () {
        this.reset()
        for (const p of source.pools()) for (const n of p.nodes) this.set({ pool: p.name, node: n.id }, n.inflight)
      }
    })
    new client.Counter({
      name: 'portico_upstream_ejections_total',
      help: 'Times a node was ejected by passive health (outlier detection).',
      labelNames: ['pool', 'node'],
      registers,
      collect () {
        this.reset()
        for (const p of source.pools()) for (const n of p.nodes) if (n.ejections > 0) this.inc({ pool: p.name, node: n.id }, n.ejections)
      }
    })
    new client.Counter({
      name: 'portico_upstream_unavailable_total',
      help: 'Requests a pool answered 503 without trying a node, by reason.',
      labelNames: ['pool', 'reason'],
      registers,
      collect () {
        this.reset()
        for (const p of source.pools()) {
          if (p.stats.noHealthyUpstream > 0) this.inc({ pool: p.name, reason: 'no_healthy_node' }, p.stats.noHealthyUpstream)
          if (p.stats.overloaded > 0) this.inc({ pool: p.name, reason: 'overloaded' }, p.stats.overloaded)
          if (p.stats.retriesDeniedByBudget > 0) this.inc({ pool: p.name, reason: 'retry_budget' }, p.stats.retriesDeniedByBudget)
        }
      }
    })
    new client.Gauge({
      name: 'portico_connections_active',
      help: 'Open client connections, by listener and protocol.',
      labelNames: ['listener', 'protocol'],
      registers,
      async collect () {
        this.reset()
        for (const c of await source.connections()) this.set({ listener: c.listener, protocol: c.protocol }, c.count)
      }
    })
    new client.Counter({
      name: 'portico_connections_refused_total',
      help: 'Client connections closed at accept by listen.maxConnections or maxConnectionsPerIp.',
      labelNames: ['limit'],
      registers,
      collect () {
        this.reset()
        const r = source.refused()
        this.inc({ limit: 'maxConnections' }, r.maxConnections)
        this.inc({ limit: 'maxConnectionsPerIp' }, r.maxConnectionsPerIp)
      }
    })
    new client.Counter({
      name: 'portico_cache_operations_total',
      help: 'What the proxy cache did: hits, misses, revalidations, stale served, stored, collapsed, bypassed, store errors, purged.',
      labelNames: ['operation'],
      registers,
      collect () {
        this.reset()
        const c = source.cache()
        if (c === null) return
        const ops: [string, number][] = [['hit', c.hits], ['miss', c.misses], ['revalidation', c.revalidations], ['stale', c.staleServed], ['stored', c.stored],
          ['collapsed', c.collapsed], ['bypassed', c.bypassed], ['store_error', c.storeErrors], ['purged', c.purged]]
        for (const [operation, n] of ops) this.inc({ operation }, n)
      }
    })
    new client.Gauge({
      name: 'portico_certificate_expiry_timestamp_seconds',
      help: 'When each certificate automatic HTTPS manages expires (Unix time); absent for a name without one yet.',
      labelNames: ['name'],
      registers,
      collect () {
        this.reset()
        for (const c of source.certificates()) if (c.notAfter !== null) this.set({ name: c.name }, Date.parse(c.notAfter) / 1000)
      }
    })
    new client.Gauge({
      name: 'portico_certificate_state',
      help: 'Managed certificates by state: valid, pending (not obtained yet), failed (the last order failed and no certificate is held).',
      labelNames: ['state'],
      registers,
      collect () {
        this.reset()
        const counts = new Map<string, number>([['valid', 0], ['pending', 0], ['failed', 0]])
        for (const c of source.certificates()) counts.set(c.state, (counts.get(c.state) ?? 0) + 1)
        for (const [state, n] of counts) this.set({ state }, n)
      }
    })
    new client.Gauge({
      name: 'portico_cache_stored_bytes',
      help: 'Bytes the memory cache holds (bodies and heads).',
      registers,
      collect () {
        const bytes = source.cache()?.bytes
        if (bytes !== null && bytes !== undefined) this.set(bytes)
      }
    })
  }
}
