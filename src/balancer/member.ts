/**
 * One member of a pool and everything the pool knows about it: the transport that reaches it (an undici pool or an
 * in-process handler), its configured weight and limit, requests in flight, and its health as the active checks
 * and passive detection (outlier.ts) see it. A member is keyed by identity (its id) inside its pool, so a reload
 * that keeps the node keeps this object, and with it the counts and the health.
 */
import type { Upstream } from '../upstream/types.js'

/** Why a member is not taking traffic, or that it is. */
export type MemberStatus = 'healthy' | 'unhealthy' | 'ejected' | 'draining'

/** A member of a pool. Fields are the pool's working state, read and written by pool.ts, outlier.ts and health-check.ts. */
export class Member {
  /** "http://10.0.0.7:8080", "http://api.internal:8080 (10.0.0.7)", "handler:./apps/x.mjs". */
  readonly id: string
  /** What reaches the node; replaced when a reload changes connection settings (the state stays). */
  transport: Upstream
  /** Identity of the transport's settings, to tell whether a reload must replace it. */
  transportKey: string
  weight: number
  /** Most requests in flight; 0 = no limit. */
  maxRequests: number
  inflight = 0

  /** Active checks' verdict (true until a check says otherwise). */
  checkedHealthy = true
  /** Consecutive probe results in the current direction. */
  probePasses = 0
  probeFailures = 0

  /** Passive health: consecutive failed requests. */
  consecutiveFailures = 0
  /** Ejected until this time (ms since epoch); 0 when not ejected. */
  ejectedUntil = 0
  /** Ejections so far (each lasts longer); reset after a long healthy spell. */
  ejections = 0
  lastEjectedAt = 0
  /** The ejection ended: the next request is a trial, and only one at a time. */
  trial = false
  trialInFlight = false

  /** When the member last became usable again (slow start), 0 for "long ago". */
  recoveredAt = 0
  /** The last failure's code or reason, for `proxy.pools()`. */
  lastError: string | null = null
  /** The sticky cookie value naming this member (pools with `sticky`). */
  stickyValue: string | null = null
  /** Removed from the pool by a reload: finishing its in-flight requests. */
  removed = false

  constructor (id: string, transport: Upstream, transportKey: string, weight: number, maxRequests: number) {
    this.id = id
    this.transport = transport
    this.transportKey = transportKey
    this.weight = weight
    this.maxRequests = maxRequests
  }

  /** What `proxy.pools()` shows of the member. */
  get status (): MemberStatus {
    if (this.removed) return 'draining'
    if (!this.checkedHealthy) return 'unhealthy'
    if (this.ejectedUntil !== 0 || this.trial) return 'ejected'
    return 'healthy'
  }
}
