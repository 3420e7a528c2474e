/**
 * The pools of a running proxy, across reloads. Each route's upstream resolves to a pool key ("pool:NAME" for a
 * pool under `pools:`, shared by every route naming it; "route:NAME" for an inline upstream); `build` keeps the pool
 * of a key that stays (updating it in place, so node state survives), creates new ones and stops the others.
 *
 * It also owns the transports: one undici pool per node and connection settings (shared by every pool that reaches
 * that node with those settings), one in-memory server per handler. A transport no member uses any more is closed
 * gracefully: undici lets requests in flight finish, so a node removed by a reload drains.
 */
import type { EventEmitter } from 'node:events'
import type { MemberSpec, ResolvedConfig, ResolvedUpstream } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'
import { InProcessUpstream } from '../upstream/in-process.js'
import { RemoteNode } from '../upstream/remote.js'
import type { Upstream } from '../upstream/types.js'
import { DnsMembers, systemLookup, type Lookup } from './dns.js'
import { UpstreamPool, type MemberInit, type PoolSnapshot } from './pool.js'

/** Pools and transports of one proxy. */
export class PoolRegistry {
  readonly #logger: Logger
  readonly #events: EventEmitter | undefined
  readonly #pools = new Map<string, { pool: UpstreamPool, dns: DnsMembers | null }>()
  readonly #transports = new Map<string, Upstream>()
  readonly #tlsIds = new Map<object, number>()
  readonly #handlerIds = new Map<unknown, number>()
  readonly #lookup: Lookup

  constructor (logger: Logger, events?: EventEmitter, lookup: Lookup = systemLookup) {
    this.#logger = logger
    this.#events = events
    this.#lookup = lookup
  }

  /**
   * The pools a config needs, by key. Pools whose key is gone are stopped, and transports nothing uses any more are
   * closed; the returned promise settles when those have drained.
   */
  build (config: ResolvedConfig): { pools: Map<string, UpstreamPool>, drained: Promise<void> } {
    const wanted = new Map<string, ResolvedUpstream>()
    for (const r of config.routes) if (r.upstream !== null) wanted.set(r.upstream.key, r.upstream)
    const out = new Map<string, UpstreamPool>()
    for (const [key, spec] of wanted) {
      const { members, ...settings } = spec
      const entry = this.#pools.get(key)
      const dns = DnsMembers.for(members, spec.dnsRefresh, this.#logger, this.#lookup)
      dns?.adopt(entry?.dns ?? null)
      const inits = dns?.current() ?? members
      if (entry === undefined) {
        const pool = new UpstreamPool(settings, inits.map((m) => this.#member(m, spec)), { logger: this.#logger, events: this.#events })
        this.#pools.set(key, { pool, dns })
      } else {
        entry.dns?.stop()
        entry.dns = dns
        entry.pool.update(settings, inits.map((m) => this.#member(m, spec)))
      }
      const e = this.#pools.get(key)!
      dns?.start((specs) => {
        e.pool.update(e.pool.settings, specs.map((m) => this.#member(m, spec)))
        void this.#sweep()
      })
      out.set(key, e.pool)
    }
    for (const [key, e] of this.#pools) {
      if (wanted.has(key)) continue
      e.dns?.stop()
      e.pool.stop()
      for (const m of e.pool.members) m.removed = true
      this.#pools.delete(key)
    }
    return { pools: out, drained: this.#sweep() }
  }

  /** Every pool's state, for `proxy.pools()`. */
  snapshot (): PoolSnapshot[] {
    return [...this.#pools.values()].map((e) => e.pool.snapshot())
  }

  /** Stops every pool and closes every transport (in-flight requests finish first). */
  async close (): Promise<void> {
    for (const e of this.#pools.values()) {
      e.dns?.stop()
      e.pool.stop()
    }
    this.#pools.clear()
    await this.#sweep()
  }

  /** Closes the transports no live member uses. */
  async #sweep (): Promise<void> {
    const used = new Set<string>()
    for (const e of this.#pools.values()) for (const m of e.pool.members) used.add(m.transportKey)
    const closing: Promise<void>[] = []
    for (const [key, t] of this.#transports) {
      if (used.has(key)) continue
      this.#transports.delete(key)
      closing.push(t.close().catch((err: unknown) => this.#logger.debug({ err, upstream: t.id }, 'closing an upstream transport failed')))
    }
    await Promise.all(closing)
  }

  /** A member's transport (shared when the settings match) and identity. */
  #member (m: MemberSpec, u: ResolvedUpstream): MemberInit {
    let key: string
    if (m.kind === 'node') {
      const tlsKey = m.protocol === 'https:' ? this.#id(this.#tlsIds, u.tls) : ''
      key = `${m.origin}|${m.authority ?? ''}|${u.connectTimeout}|${u.maxConnections}|${u.keepAlive}|${tlsKey}|${u.http2}`
    } else {
      const fn = m.target.kind === 'listener' ? m.target.listener : m.target.kind === 'fetch' ? m.target.fetch : m.target.server
      key = `handler#${this.#id(this.#handlerIds, fn)}`
    }
    let t = this.#transports.get(key)
    if (t === undefined) {
      t = this.#transport(m, u)
      this.#transports.set(key, t)
    }
    return { id: m.id, upstream: t, transportKey: key, weight: m.weight, maxRequests: m.maxRequests }
  }

  #transport (m: MemberSpec, u: ResolvedUpstream): Upstream {
    if (m.kind === 'handler') {
      return new InProcessUpstream(m.id, m.target, { onHandlerError: (err) => this.#logger.error({ err, upstream: m.id }, 'handler failed') })
    }
    if (m.protocol === 'https:' && !u.tls.rejectUnauthorized) {
      this.#logger.warn({ upstream: m.origin, pool: u.name }, 'insecureSkipVerify: the certificate of this node is NOT verified; anyone on the path can impersonate it')
    }
    return new RemoteNode(m.origin, {
      connectTimeout: u.connectTimeout,
      maxConnections: u.maxConnections,
      keepAlive: u.keepAlive,
      authority: m.authority,
      ...(m.protocol === 'https:' ? { tls: m.tlsName === undefined || u.tls.servername !== undefined ? u.tls : { ...u.tls, servername: m.tlsName }, http2: u.http2 } : {})
    }, m.id)
  }

  #id (ids: Map<unknown, number>, value: unknown): number {
    let id = ids.get(value)
    if (id === undefined) ids.set(value, id = ids.size)
    return id
  }
}
