/**
 * A pool: members behind one `Upstream`. It owns the members and their passive health (a member whose connection
 * failed is skipped for `failTimeout`), asks its balancing policy which usable member goes next, and hands each
 * request to an `Attempt` (attempt.ts), which retries by the error registry's rules.
 */
import { ProxyError } from '../errors.js'
import type { PolicyName } from '../config/resolved.js'
import type { DispatchOptions, ResponseHandler, Upstream, UpstreamRequest } from '../upstream/types.js'
import { Attempt } from './attempt.js'
import { createPolicy, type BalancingPolicy } from './policy.js'

/** Pool settings. */
export interface PoolOptions {
  /** Milliseconds a member that failed to connect is skipped; 0 disables passive health. */
  failTimeout: number
  /** The balancing policy. Default round-robin. */
  policy?: PolicyName
}

interface Member {
  upstream: Upstream
  downUntil: number
}

/** A pool of members with failover. */
export class UpstreamPool implements Upstream {
  readonly id: string
  readonly #members: Member[]
  readonly #failTimeout: number
  readonly #policy: BalancingPolicy
  #downCount = 0
  /** What the current `select` excludes, and the time it compares against, read by the predicates below. */
  #exclude = 0
  #now = 0

  constructor (members: Upstream[], options: PoolOptions) {
    if (members.length === 0) throw new ProxyError('PORTICO_ERR_UPSTREAM_UNAVAILABLE', 'a pool needs at least one member')
    this.#members = members.map((upstream) => ({ upstream, downUntil: 0 }))
    this.#failTimeout = options.failTimeout
    this.#policy = createPolicy(options.policy ?? 'round-robin')
    this.id = members.length === 1 ? members[0].id : `pool(${members.map((m) => m.id).join(',')})`
  }

  /** Members in order, for tests and `portico check`. */
  get members (): readonly Upstream[] {
    return this.#members.map((m) => m.upstream)
  }

  get size (): number {
    return this.#members.length
  }

  dispatch (req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler): void {
    new Attempt(this, req, opts, handler).start()
  }

  /**
   * The member for the next attempt, skipping those marked down and those in `exclude` (a bit per index already
   * tried). When every candidate is down, one of them is returned anyway (so a recovered node is found); -1 when
   * all are excluded.
   */
  select (exclude: number): number {
    const n = this.#members.length
    if (n === 1) return exclude & 1 ? -1 : 0
    this.#exclude = exclude
    this.#now = this.#downCount > 0 ? Date.now() : 0
    const i = this.#policy.pick(n, this.#up)
    return i !== -1 ? i : this.#policy.pick(n, this.#notExcluded)
  }

  readonly #notExcluded = (i: number): boolean => i >= 31 || (this.#exclude & (1 << i)) === 0

  readonly #up = (i: number): boolean => {
    if (!this.#notExcluded(i)) return false
    const m = this.#members[i]
    if (m.downUntil === 0) return true
    if (m.downUntil > this.#now) return false
    m.downUntil = 0
    this.#downCount--
    return true
  }

  /** The member at an index `select` returned. */
  memberAt (i: number): Upstream {
    return this.#members[i].upstream
  }

  /** Passive health: skip this member for failTimeout (never the only one). */
  markDown (i: number): void {
    if (this.#failTimeout <= 0 || this.#members.length === 1) return
    const m = this.#members[i]
    if (m.downUntil === 0) this.#downCount++
    m.downUntil = Date.now() + this.#failTimeout
  }

  async close (): Promise<void> {
    await Promise.all(this.#members.map((m) => m.upstream.close()))
  }
}
