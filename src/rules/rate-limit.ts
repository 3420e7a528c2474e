/**
 * The rate-limit engine: how many requests of one key may pass, decided by GCRA (the generic cell rate algorithm,
 * as in redis-cell), kept in process memory or in a Redis shared by every Portico instance; the RateLimit fields
 * that tell a client where it stands; and a per-key limit on requests in flight. Which requests a limit applies to,
 * how their key is built, and what a refused request is answered with belong to the pipeline, not here.
 *
 * Semantics of a {@link RateLimitSpec} `{ rate, period, burst }` (all stores alike):
 *
 * - Emission interval T = period / rate: the steady state admits one request every T ms.
 * - Tolerance tau = T × burst. A key's state is one number, its theoretical arrival time (TAT); a request at `now`
 *   is admitted when TAT − now ≤ tau (a key never seen, or idle, has TAT = now), and then moves TAT by T.
 * - So an idle key admits exactly 1 + burst requests at once, and after that one more every T ms. The bucket is
 *   full again (the key idle, as if never seen) once now reaches TAT.
 * - `limit` = rate + burst is the most that any window of `period` ms can admit: from an idle key, 1 + burst at
 *   once, then rate − 1 more before the window ends. It is what `RateLimit-Policy` announces as `q` per `w`.
 * - `remaining` is how many more requests would be admitted right now, back to back, after this one: at most
 *   `burst` (the first take on an idle key reports exactly that), so always below `limit`. A fail-open decision
 *   (Redis unavailable) reports remaining = limit.
 * - `resetMs` is TAT − now after the decision (the time until the bucket is full again); `retryAfterMs`, for a
 *   refused request, TAT − tau − now (the time until one more fits). Both are whole ms, rounded up.
 *
 * Example: rate 10, period 60 s, burst 20 → T = 6 s, limit 30. An idle key admits 21 requests at once (remaining
 * 20, 19, … 0; resetMs 6 s, 12 s, … 126 s), refuses the 22nd with retryAfterMs 6 s, and admits one more 6 s later.
 *
 * A key is shared by every spec used with it: callers that apply several limits to one client put the limit's
 * name into the key. Times are milliseconds, computed in floating point with a tolerance of 1 µs, so a retry after
 * exactly `retryAfterMs` (or one emission interval that is not a whole number of ms) is admitted.
 *
 * Stores:
 * - {@link MemoryRateStore}: one process, exact (a synchronous take cannot interleave with another), bounded by an
 *   LRU of keys. An entry whose TAT has passed is the same as no entry; least recently used entries are dropped
 *   first, so only more than `maxKeys` keys used within one full-bucket time can drop a live entry (that key then
 *   starts full).
 * - RedisRateStore (rate-limit-redis.ts, loaded only when a route uses it: ioredis is large): exact across instances. One Lua script reads the TAT, decides and writes it back
 *   atomically, taking the time from Redis (`TIME`) so instances with skewed clocks agree; the key expires when its
 *   bucket is full again, so idle keys vanish. When Redis is down or slower than `commandTimeout`, requests are
 *   admitted (fail open, remaining = limit): a limiter outage never becomes a site outage. It logs one warning per
 *   outage and one info line when Redis answers again.
 */
import { performance } from 'node:perf_hooks'
import { LRUCache } from 'lru-cache'

/** A limit: `rate` requests per `period` ms sustained, with up to `burst` extra requests allowed at once. */
export interface RateLimitSpec {
  /** Requests per period, sustained: a positive integer. */
  rate: number
  /** Milliseconds: positive and finite. */
  period: number
  /** Requests an idle key may send at once on top of the first: an integer ≥ 0. */
  burst: number
  /** The policy's name in the RateLimit fields. */
  name: string
}

export interface RateDecision {
  allowed: boolean
  /** Requests allowed in a full window (rate + burst). */
  limit: number
  /** Requests still allowed right now (>= 0). */
  remaining: number
  /** ms until the bucket is full again (quota fully reset). */
  resetMs: number
  /** ms to wait before a retry may succeed; 0 when allowed. */
  retryAfterMs: number
}

export interface RateStore {
  /**
   * Takes one request for `key` under `spec`. Memory: synchronous result. Redis: a promise, which never rejects
   * for an outage (it fails open). Throws (memory) or rejects (Redis) with a RangeError only for an invalid spec.
   */
  take (key: string, spec: RateLimitSpec): RateDecision | Promise<RateDecision>
  close (): Promise<void>
}

/** Slack in every comparison and rounding, in ms: far below any real interval, far above float noise. */
export const EPS = 1e-3

/** The spec's emission interval and tolerance; a RangeError for a spec the algorithm cannot run. */
export function intervals (spec: RateLimitSpec): { T: number, tau: number } {
  if (!(Number.isInteger(spec.rate) && spec.rate > 0 && spec.period > 0 && Number.isFinite(spec.period) && Number.isInteger(spec.burst) && spec.burst >= 0)) {
    throw new RangeError(`invalid rate limit ${JSON.stringify(spec.name)}: rate must be a positive integer, period positive and finite, burst an integer >= 0 (got rate ${spec.rate}, period ${spec.period}, burst ${spec.burst})`)
  }
  const T = spec.period / spec.rate
  return { T, tau: T * spec.burst }
}

/** A duration in whole ms, rounded up past float noise. */
function wholeMs (ms: number): number {
  return Math.max(0, Math.ceil(ms - EPS))
}

/**
 * The decision, from whether the request was admitted and `ahead` = TAT − now after it (the same arithmetic for
 * every store, so they cannot disagree on what a state means).
 */
export function decide (spec: RateLimitSpec, T: number, tau: number, allowed: boolean, ahead: number): RateDecision {
  const limit = spec.rate + spec.burst
  if (!allowed) return { allowed, limit, remaining: 0, resetMs: wholeMs(ahead), retryAfterMs: Math.max(1, wholeMs(ahead - tau)) }
  const remaining = Math.min(spec.burst, Math.max(0, Math.floor((tau + T - ahead + EPS) / T)))
  return { allowed, limit, remaining, resetMs: wholeMs(ahead), retryAfterMs: 0 }
}

/** Options of {@link MemoryRateStore}. */
export interface MemoryRateStoreOptions {
  /** Keys remembered at most (least recently used dropped first). Default 100 000. */
  maxKeys?: number
  /** The clock, in ms; only differences matter. Default `performance.now()` (monotonic). For tests. */
  now?: () => number
}

/** The per-process store: exact, synchronous, bounded by `maxKeys`. */
export class MemoryRateStore implements RateStore {
  /** key → TAT. */
  readonly #tats: LRUCache<string, number>
  readonly #now: () => number

  constructor (options: MemoryRateStoreOptions = {}) {
    this.#tats = new LRUCache<string, number>({ max: Math.max(1, options.maxKeys ?? 100_000) })
    this.#now = options.now ?? (() => performance.now())
  }

  /** Keys remembered now (at most `maxKeys`). */
  get size (): number {
    return this.#tats.size
  }

  take (key: string, spec: RateLimitSpec): RateDecision {
    const { T, tau } = intervals(spec)
    const now = this.#now()
    const stored = this.#tats.get(key)
    const tat = stored === undefined || stored < now ? now : stored
    if (tat - now > tau + EPS) return decide(spec, T, tau, false, tat - now)
    this.#tats.set(key, tat + T)
    return decide(spec, T, tau, true, tat + T - now)
  }

  async close (): Promise<void> {
    this.#tats.clear()
  }
}

/** A policy name as a structured-field String (RFC 8941 §3.3.3): printable ASCII, `"` and `\` escaped. */
function sfString (s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, '\\$&')}"`
}

/**
 * Response fields for a decision: `RateLimit-Policy` and `RateLimit` per the IETF httpapi draft (draft-ietf-httpapi-
 * ratelimit-headers, latest version: structured-field syntax such as `RateLimit-Policy: "name";q=100;w=60` and
 * `RateLimit: "name";r=42;t=17`), plus `Retry-After` (whole seconds, rounded up, at least 1) when refused. Flat
 * [name, value, name, value...], names in lower case as Portico sends every field.
 *
 * q = limit (rate + burst), w = period in whole seconds (rounded up, at least 1), r = remaining, t = resetMs in
 * whole seconds (rounded up). q per w is the most any one window admits, not the sustained rate (rate per period).
 * A name outside printable ASCII has those characters replaced by `?`.
 *
 * Example (rate 10, period 60 s, burst 20), the 22nd request of an idle key: `ratelimit-policy: "api";q=30;w=60`,
 * `ratelimit: "api";r=0;t=126`, `retry-after: 6`.
 */
export function rateLimitFields (spec: RateLimitSpec, d: RateDecision): string[] {
  const name = sfString(spec.name)
  const out = [
    'ratelimit-policy', `${name};q=${d.limit};w=${Math.max(1, Math.ceil(spec.period / 1000))}`,
    'ratelimit', `${name};r=${d.remaining};t=${Math.ceil(d.resetMs / 1000)}`
  ]
  // RFC 9110 §10.2.3: delay-seconds, a non-negative integer.
  if (!d.allowed) out.push('retry-after', String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))))
  return out
}

/**
 * In-flight limit per key: at most `max` requests of one key at once. Every successful `acquire` must be paired
 * with one `release` (when the response ends, however it ends); a key with nothing in flight is forgotten.
 */
export class InFlightLimiter {
  readonly #max: number
  readonly #counts = new Map<string, number>()

  /** `max`: a positive integer (RangeError otherwise). */
  constructor (max: number) {
    if (!(Number.isInteger(max) && max > 0)) throw new RangeError(`in-flight limit must be a positive integer (got ${max})`)
    this.#max = max
  }

  /** Takes a slot for `key`: true, or false (and nothing taken) when `max` are in flight already. */
  acquire (key: string): boolean {
    const n = this.#counts.get(key) ?? 0
    if (n >= this.#max) return false
    this.#counts.set(key, n + 1)
    return true
  }

  /** Gives back a slot of `key`. A release without an acquire is ignored. */
  release (key: string): void {
    const n = this.#counts.get(key)
    if (n === undefined) return
    if (n <= 1) this.#counts.delete(key)
    else this.#counts.set(key, n - 1)
  }

  /** Keys with at least one request in flight. */
  size (): number {
    return this.#counts.size
  }
}
