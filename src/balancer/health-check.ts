/**
 * Active health checks: every member of a pool is probed with `GET healthCheck.path` through its own transport (so
 * an in-process handler is checked in process, the same way), every `interval` with up to 10% jitter and a first
 * probe at a random point of the first interval, so that several instances never probe in lockstep. A probe passes
 * when a complete response with an expected status (and body, when `expectBody` is set) arrives within `timeout`.
 * `unhealthyAfter` failures in a row take a member out; `healthyAfter` passes bring it back (and end a passive
 * ejection, as Envoy's active checks do). Timers are unref'd: checks never keep the process alive.
 */
import type { ResolvedHealthCheck } from '../config/resolved.js'
import { classifyUpstreamError } from '../classify.js'
import type { ResponseHandler } from '../upstream/types.js'
import type { Member } from './member.js'
import type { HealthChange } from './outlier.js'

/** Bytes of a probe's body read for `expectBody`. */
const BODY_LIMIT = 64 * 1024

/** The outcome of one probe: null when it passed, else why not. */
type ProbeResult = string | null

/** Sends one probe and reports once. */
class Probe implements ResponseHandler {
  readonly #cfg: ResolvedHealthCheck
  readonly #done: (result: ProbeResult) => void
  #status = 0
  #body: Buffer[] | null = null
  #bytes = 0
  #settled = false
  #timer: NodeJS.Timeout
  #abort: ((reason?: Error) => void) | null = null

  constructor (cfg: ResolvedHealthCheck, done: (result: ProbeResult) => void) {
    this.#cfg = cfg
    this.#done = done
    this.#timer = setTimeout(() => {
      this.#settle(`no complete answer within ${cfg.timeout} ms`)
      this.#abort?.(new Error('health check timed out'))
    }, cfg.timeout)
    this.#timer.unref()
  }

  #settle (result: ProbeResult): void {
    if (this.#settled) return
    this.#settled = true
    clearTimeout(this.#timer)
    this.#done(result)
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
    if (this.#settled) abort(new Error('health check timed out'))
  }

  onHeaders (status: number): boolean {
    if (status < 200) return true
    this.#status = status
    if (this.#cfg.expectBody !== null) this.#body = []
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#body !== null && this.#bytes < BODY_LIMIT) {
      this.#body.push(chunk)
      this.#bytes += chunk.length
    }
    return true
  }

  onComplete (): void {
    const status = this.#status
    if (!this.#cfg.expectStatus.some(([lo, hi]) => status >= lo && status <= hi)) {
      this.#settle(`status ${status}`)
      return
    }
    if (this.#body !== null && this.#cfg.expectBody !== null) {
      const text = Buffer.concat(this.#body).subarray(0, BODY_LIMIT).toString('utf8')
      if (!this.#cfg.expectBody.test(text)) {
        this.#settle(`body does not match ${String(this.#cfg.expectBody)}`)
        return
      }
    }
    this.#settle(null)
  }

  onError (err: Error): void {
    this.#settle(classifyUpstreamError(err).code)
  }
}

/** The Host of a probe: the configured one, else the node's own authority. */
function probeHost (cfg: ResolvedHealthCheck, m: Member): string {
  if (cfg.host !== null) return cfg.host
  const id = m.id
  if (id.startsWith('http://') || id.startsWith('https://')) return new URL(id.split(' ')[0]).host
  return 'localhost'
}

/** Probes every member of one pool. */
export class ActiveHealth {
  readonly #cfg: ResolvedHealthCheck
  readonly #onChange: HealthChange
  readonly #timers = new Map<Member, NodeJS.Timeout>()
  #closed = false

  constructor (cfg: ResolvedHealthCheck, onChange: HealthChange) {
    this.#cfg = cfg
    this.#onChange = onChange
  }

  /** Starts probing members not probed yet and stops probing those no longer listed. */
  sync (members: readonly Member[]): void {
    if (this.#closed) return
    const keep = new Set(members)
    for (const [m, t] of this.#timers) {
      if (!keep.has(m)) {
        clearTimeout(t)
        this.#timers.delete(m)
      }
    }
    for (const m of members) if (!this.#timers.has(m)) this.#schedule(m, Math.random() * this.#cfg.interval)
  }

  #schedule (m: Member, delay: number): void {
    const t = setTimeout(() => this.#probe(m), delay)
    t.unref()
    this.#timers.set(m, t)
  }

  #probe (m: Member): void {
    if (this.#closed || !this.#timers.has(m)) return
    const cfg = this.#cfg
    const headers = ['host', probeHost(cfg, m), 'user-agent', 'portico-health-check', ...cfg.headers]
    const done = (result: ProbeResult): void => {
      this.#record(m, result)
      if (!this.#closed && this.#timers.has(m)) this.#schedule(m, cfg.interval * (0.9 + Math.random() * 0.2))
    }
    try {
      m.transport.dispatch({ method: 'GET', path: cfg.path, headers, body: null }, { headersTimeout: cfg.timeout, bodyTimeout: cfg.timeout }, new Probe(cfg, done))
    } catch (err) {
      done((err as Error).message)
    }
  }

  #record (m: Member, failure: ProbeResult): void {
    if (failure === null) {
      m.probeFailures = 0
      m.probePasses++
      if (!m.checkedHealthy && m.probePasses >= this.#cfg.healthyAfter) {
        m.checkedHealthy = true
        m.recoveredAt = Date.now()
        this.#onChange(m, 'unhealthy', 'healthy', `${m.probePasses} health check${m.probePasses === 1 ? '' : 's'} passed`)
      } else if (m.checkedHealthy && (m.ejectedUntil !== 0 || m.trial)) {
        // A passing active check ends a passive ejection.
        m.ejectedUntil = 0
        m.trial = false
        m.trialInFlight = false
        m.recoveredAt = Date.now()
        this.#onChange(m, 'ejected', 'healthy', 'health check passed')
      }
      return
    }
    m.probePasses = 0
    m.probeFailures++
    m.lastError = `health check: ${failure}`
    if (m.checkedHealthy && m.probeFailures >= this.#cfg.unhealthyAfter) {
      m.checkedHealthy = false
      this.#onChange(m, 'healthy', 'unhealthy', `${m.probeFailures} health check${m.probeFailures === 1 ? '' : 's'} failed, last: ${failure}`)
    }
  }

  /** Stops every probe timer. */
  close (): void {
    this.#closed = true
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
  }
}
