/**
 * A pool: members behind one `Upstream`, with their state. It asks its balancing policy (policy.ts) which usable
 * member goes next, counts requests in flight (per member, for the whole pool, and retries for the retry budget),
 * keeps passive (outlier.ts) and active (health-check.ts) health, re-resolves DNS names (dns.ts), and holds requests
 * over `maxRequests` in a bounded queue (queue.ts). Each request is an `Attempt` (attempt.ts), which retries.
 *
 * A pool lives as long as its key ("pool:NAME" or "route:NAME") stays in the config: a reload `update`s it in place,
 * so members keep their counts and health by identity, and a removed member finishes what it has in flight.
 * "Usable" means: not already tried by this request, below its own limit, and (unless the pool is in panic mode)
 * healthy by active checks and not ejected. An ejected member whose cool-down ended takes one trial request.
 */
import { EventEmitter } from 'node:events'
import type { ResolvedUpstream } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'
import { ProxyError } from '../errors.js'
import type { DispatchOptions, ResponseHandler, Upstream, UpstreamRequest } from '../upstream/types.js'
import { Attempt } from './attempt.js'
import { hashKeyOf, stickyValue } from './affinity.js'
import { ActiveHealth } from './health-check.js'
import { Member, type MemberStatus } from './member.js'
import { PassiveHealth } from './outlier.js'
import { createPolicy, type BalancingPolicy, type PoolView } from './policy.js'
import { WaitQueue } from './queue.js'

/** The settings a pool runs with: the resolved upstream without its member list. */
export type PoolSettings = Omit<ResolvedUpstream, 'members'>

/** A member as the pool is given it: identity, transport and share. */
export interface MemberInit {
  id: string
  upstream: Upstream
  transportKey: string
  weight: number
  maxRequests: number
}

/** A health transition, as `proxy.on('health', …)` receives it. */
export interface HealthEvent {
  pool: string
  node: string
  from: string
  to: string
  reason: string
}

/** What `proxy.pools()` shows of a member. */
export interface MemberSnapshot {
  id: string
  status: MemberStatus
  weight: number
  inflight: number
  maxRequests: number | null
  ejections: number
  ejectedUntil: string | null
  consecutiveFailures: number
  lastError: string | null
}

/** What `proxy.pools()` shows of a pool. */
export interface PoolSnapshot {
  name: string
  key: string
  policy: string
  inflight: number
  queued: number
  retriesInFlight: number
  stats: PoolStats
  nodes: MemberSnapshot[]
}

/** Counters since the pool was created. */
export interface PoolStats {
  requests: number
  retries: number
  retriesDeniedByBudget: number
  noHealthyUpstream: number
  overloaded: number
  ejections: number
}

/** Outside services a pool uses: logs and health events. */
export interface PoolDeps {
  logger?: Logger
  events?: EventEmitter
}

/** Why `pick` found no member. */
export const enum NoPick { None = 0, Unhealthy = 1, Limited = 2 }

/** A pool of members with balancing, health, retries and overload protection. */
export class UpstreamPool implements Upstream, PoolView {
  readonly key: string
  readonly name: string
  id: string
  settings: PoolSettings
  members: Member[] = []
  #policy!: BalancingPolicy
  readonly #deps: PoolDeps
  passive: PassiveHealth | null = null
  #active: ActiveHealth | null = null
  readonly queue: WaitQueue
  /** Requests dispatched to members now. */
  active = 0
  /** Requests in the pool (queued, backing off or in flight): the retry budget's base. */
  requests = 0
  /** Retries in flight. */
  retries = 0
  readonly stats: PoolStats = { requests: 0, retries: 0, retriesDeniedByBudget: 0, noHealthyUpstream: 0, overloaded: 0, ejections: 0 }
  /** Members not fully healthy (unhealthy, ejected, in trial or slow start): 0 keeps `usable` on its fast path. */
  #impaired = 0
  #closed = false

  // The request being placed, read by the PoolView methods below while a policy picks.
  #tried: readonly Member[] | null = null
  #now = 0
  #panic = false
  /** Why the last `usable` calls refused members (for the 503 that follows a failed pick). */
  #refused: NoPick = NoPick.None

  constructor (settings: PoolSettings, members: MemberInit[], deps: PoolDeps = {}) {
    if (members.length === 0) throw new ProxyError('PORTICO_ERR_UPSTREAM_UNAVAILABLE', 'a pool needs at least one member')
    this.key = settings.key
    this.name = settings.name
    this.settings = settings
    this.#deps = deps
    this.queue = new WaitQueue()
    this.id = ''
    this.update(settings, members)
  }

  /** Applies new settings and members: members kept by id keep their state; removed ones drain. */
  update (settings: PoolSettings, inits: MemberInit[]): Member[] {
    this.settings = settings
    const old = new Map(this.members.map((m) => [m.id, m]))
    const next: Member[] = []
    for (const init of inits) {
      let m = old.get(init.id)
      if (m === undefined) {
        m = new Member(init.id, init.upstream, init.transportKey, init.weight, init.maxRequests)
      } else {
        old.delete(init.id)
        m.transport = init.upstream
        m.transportKey = init.transportKey
        m.weight = init.weight
        m.maxRequests = init.maxRequests
      }
      next.push(m)
    }
    for (const m of old.values()) m.removed = true
    this.members = next
    this.id = next.length === 1 ? next[0].id : `pool(${next.map((m) => m.id).join(',')})`
    this.#policy = createPolicy(settings.policy, next.map((m) => ({ id: m.id, weight: m.weight })))
    this.passive = settings.outlier === null ? null : new PassiveHealth(settings.outlier, this.#onHealth)
    if (settings.sticky !== null) for (const m of next) m.stickyValue = stickyValue(m.id, settings.sticky.secret)
    if (settings.healthCheck === null) {
      this.#active?.close()
      this.#active = null
      for (const m of next) m.checkedHealthy = true
    } else if (!this.#closed) {
      // Settings may have changed: start over with the new ones, keeping each member's verdict.
      this.#active?.close()
      this.#active = new ActiveHealth(settings.healthCheck, this.#onHealth)
      this.#active.sync(next)
    }
    this.#recount()
    return [...old.values()]
  }

  /** Members in order (their transports), for tests and `portico check`. */
  get upstreams (): readonly Upstream[] {
    return this.members.map((m) => m.transport)
  }

  get size (): number {
    return this.members.length
  }

  dispatch (req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler): void {
    this.stats.requests++
    new Attempt(this, req, opts, handler).start()
  }

  // --- choosing a member ----------------------------------------------------------------------------------------

  /**
   * The member for the next attempt of `req`, skipping `tried`; null when none is usable (`noPick` then says why).
   * Sticky requests go to the member their cookie names while it is usable.
   */
  pick (req: UpstreamRequest, tried: readonly Member[] | null, sticky: string | null): Member | null {
    const n = this.members.length
    this.#tried = tried
    this.#refused = NoPick.None
    this.#now = this.#impaired !== 0 ? Date.now() : 0
    this.#panic = false
    if (this.#impaired !== 0 && this.settings.panicThreshold > 0) {
      let healthy = 0
      for (const m of this.members) if (m.checkedHealthy && m.ejectedUntil === 0 && !m.trial) healthy++
      this.#panic = healthy * 100 < this.settings.panicThreshold * n
    }
    if (sticky !== null) {
      for (let i = 0; i < n; i++) if (this.members[i].stickyValue === sticky && this.usable(i)) return this.members[i]
    }
    const key = this.settings.hashKey === null ? null : hashKeyOf(this.settings.hashKey, req)
    const i = n === 1 ? (this.usable(0) ? 0 : -1) : this.#policy.pick(this, key)
    return i === -1 ? null : this.members[i]
  }

  /** Why the last `pick` returned null. */
  get noPick (): NoPick {
    return this.#refused
  }

  usable (i: number): boolean {
    const m = this.members[i]
    const tried = this.#tried
    if (tried !== null && tried.includes(m)) return false
    if (m.maxRequests !== 0 && m.inflight >= m.maxRequests) {
      this.#refused |= NoPick.Limited
      return false
    }
    if (this.#impaired === 0 || this.#panic) return true
    if (!m.checkedHealthy) {
      this.#refused |= NoPick.Unhealthy
      return false
    }
    if (m.ejectedUntil !== 0) {
      if (m.ejectedUntil > this.#now) {
        this.#refused |= NoPick.Unhealthy
        return false
      }
      // The cool-down is over: one trial request decides.
      m.ejectedUntil = 0
      m.trial = true
    }
    if (m.trial && m.trialInFlight) {
      this.#refused |= NoPick.Unhealthy
      return false
    }
    return true
  }

  weight (i: number): number {
    const m = this.members[i]
    const slow = this.settings.slowStart
    if (slow === 0 || m.recoveredAt === 0) return m.weight
    const f = (this.#now - m.recoveredAt) / slow
    if (f >= 1 || this.#now === 0) {
      m.recoveredAt = 0
      this.#recount()
      return m.weight
    }
    return m.weight * Math.max(0.05, f)
  }

  inflight (i: number): number {
    return this.members[i].inflight
  }

  /** True when the pool as a whole is at maxRequests. */
  get full (): boolean {
    return this.settings.maxRequests !== 0 && this.active >= this.settings.maxRequests
  }

  /** An attempt goes to `m`. */
  acquire (m: Member): void {
    m.inflight++
    this.active++
    if (m.trial) m.trialInFlight = true
  }

  /** An attempt on `m` is over: the next queued request may go. */
  release (m: Member): void {
    m.inflight--
    this.active--
    if (m.trial && m.trialInFlight) m.trialInFlight = false
    if (this.queue.length !== 0) this.queue.wake(this)
  }

  /** The Retry-After (seconds) of a 503 for an unusable pool: until the earliest ejection ends, or a check interval. */
  retryAfter (): number {
    let soonest = Infinity
    const now = Date.now()
    for (const m of this.members) if (m.ejectedUntil > now) soonest = Math.min(soonest, m.ejectedUntil - now)
    if (soonest === Infinity) soonest = this.settings.healthCheck?.interval ?? 1000
    return Math.max(1, Math.ceil(soonest / 1000))
  }

  // --- health ---------------------------------------------------------------------------------------------------

  readonly #onHealth = (m: Member, from: string, to: string, reason: string): void => {
    if (this.settings.slowStart === 0) m.recoveredAt = 0
    this.#recount()
    if (to === 'ejected') this.stats.ejections++
    if (m.removed) return
    const event: HealthEvent = { pool: this.name, node: m.id, from, to, reason }
    const log = this.#deps.logger
    if (to === 'healthy') log?.info(event, `upstream node ${m.id} is healthy again`)
    else log?.warn(event, `upstream node ${m.id} is ${to}`)
    this.#deps.events?.emit('health', event)
  }

  /** Recomputes how many members are impaired (after any health transition). */
  #recount (): void {
    let n = 0
    for (const m of this.members) if (!m.checkedHealthy || m.ejectedUntil !== 0 || m.trial || (m.recoveredAt !== 0 && this.settings.slowStart !== 0)) n++
    this.#impaired = n
  }

  /** Called when a member's state changed outside a transition (a trial or slow start began or ended). */
  touch (): void {
    this.#recount()
  }

  // --- reporting and closing ------------------------------------------------------------------------------------

  snapshot (): PoolSnapshot {
    return {
      name: this.name,
      key: this.key,
      policy: this.settings.policy,
      inflight: this.active,
      queued: this.queue.length,
      retriesInFlight: this.retries,
      stats: { ...this.stats },
      nodes: this.members.map((m) => ({
        id: m.id,
        status: m.status,
        weight: m.weight,
        inflight: m.inflight,
        maxRequests: m.maxRequests === 0 ? null : m.maxRequests,
        ejections: m.ejections,
        ejectedUntil: m.ejectedUntil === 0 ? null : new Date(m.ejectedUntil).toISOString(),
        consecutiveFailures: m.consecutiveFailures,
        lastError: m.lastError
      }))
    }
  }

  /** Stops health checks and fails queued requests; transports are closed by their owner (registry.ts). */
  stop (): void {
    this.#closed = true
    this.#active?.close()
    this.#active = null
    this.queue.drain()
  }

  /** Closes the pool and its members' transports (a pool used on its own, as in tests). */
  async close (): Promise<void> {
    this.stop()
    await Promise.all(this.members.map((m) => m.transport.close()))
  }
}
