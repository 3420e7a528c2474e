/**
 * Passive health, as Envoy's outlier detection: consecutive failed requests (connection failures always; resets,
 * timeouts and the configured 5xx statuses when `outlier` is set) eject a member for a cool-down that grows with
 * each ejection (base × ejections, capped), never more than `maxEjectedPercent` of the pool at once (one member of
 * two or more always can be). When the cool-down ends the member takes a single trial request: success brings it
 * back, failure ejects it again for longer. `failTimeout` alone is the simple form: one connection failure ejects
 * for exactly failTimeout. The pool calls these at each outcome; transitions go to `onChange` (logged once).
 */
import type { ResolvedOutlier } from '../config/resolved.js'
import type { RetryCondition } from '../errors.js'
import type { Member } from './member.js'

/** A member's health changed: from which status to which, and why. */
export type HealthChange = (member: Member, from: string, to: string, reason: string) => void

/** Passive detection for one pool. */
export class PassiveHealth {
  readonly #cfg: ResolvedOutlier
  readonly #onChange: HealthChange

  constructor (cfg: ResolvedOutlier, onChange: HealthChange) {
    this.#cfg = cfg
    this.#onChange = onChange
  }

  /** Whether a response status counts as a failure. */
  isFailureStatus (status: number): boolean {
    return this.#cfg.statuses.length !== 0 && this.#cfg.statuses.includes(status)
  }

  /** Whether a failed attempt with this condition counts (connection failures always do). */
  counts (condition: RetryCondition | undefined): boolean {
    if (condition === 'connect-failure') return true
    return this.#cfg.countResets && (condition === 'reset' || condition === 'timeout')
  }

  /** A request to `m` failed; may eject it (within the pool's cap). */
  failure (members: readonly Member[], m: Member, reason: string, now: number): void {
    m.lastError = reason
    if (m.trial) {
      m.trial = false
      m.trialInFlight = false
      this.#eject(m, `trial request failed: ${reason}`, now, 'ejected')
      return
    }
    if (m.ejectedUntil !== 0) return
    m.consecutiveFailures++
    if (m.consecutiveFailures < this.#cfg.consecutiveFailures) return
    if (!this.#mayEject(members)) return
    this.#eject(m, `${m.consecutiveFailures} consecutive failure${m.consecutiveFailures === 1 ? '' : 's'}, last: ${reason}`, now, 'healthy')
  }

  /** A request to `m` succeeded: the failure streak ends, a trial brings it back. */
  success (m: Member, now: number): void {
    m.consecutiveFailures = 0
    if (m.trial) {
      m.trial = false
      m.trialInFlight = false
      m.recoveredAt = now
      this.#onChange(m, 'ejected', 'healthy', 'trial request succeeded')
    }
    // A long healthy spell forgets earlier ejections, so the next one is short again.
    if (m.ejections !== 0 && m.ejectedUntil === 0 && now - m.lastEjectedAt > this.#cfg.maxEjectionTime * 2) m.ejections = 0
  }

  #mayEject (members: readonly Member[]): boolean {
    let live = 0
    let ejected = 0
    for (const x of members) {
      if (x.removed) continue
      live++
      if (x.ejectedUntil !== 0 || x.trial) ejected++
    }
    const cap = Math.max(live >= 2 ? 1 : 0, Math.floor(live * this.#cfg.maxEjectedPercent / 100))
    return ejected < cap
  }

  #eject (m: Member, reason: string, now: number, from: string): void {
    m.ejections++
    const time = Math.min(this.#cfg.maxEjectionTime, this.#cfg.baseEjectionTime * m.ejections)
    m.ejectedUntil = now + time
    m.lastEjectedAt = now
    m.consecutiveFailures = 0
    this.#onChange(m, from, 'ejected', `${reason}; ejected for ${time} ms`)
  }
}
