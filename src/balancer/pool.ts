/**
 * A pool: members behind one `Upstream`, the select → dispatch → retry loop. Round-robin selection that skips
 * members marked down; passive health (a member that failed to connect is skipped for `failTimeout`); retries
 * on another member only when nothing of the request can have reached the failed one:
 * - a connection failure (refused, DNS, unreachable, connect timeout, TLS) with the body not yet read; or
 * - a reset before any response byte, for an idempotent method with no body (RFC 9110 §9.2.2), which covers the
 *   keep-alive race where a node closes an idle connection as a request is written on it.
 * A request body that was read even partly is never replayed.
 */
import { classifyUpstreamError, failedBeforeSending } from '../classify.js'
import { ProxyError } from '../errors.js'
import type { Duplex } from 'node:stream'
import type { AttemptObserver, DispatchOptions, ResponseHandler, Upstream, UpstreamRequest } from '../upstream/types.js'

/** Pool settings. */
export interface PoolOptions {
  /** Milliseconds a member that failed to connect is skipped; 0 disables passive health. */
  failTimeout: number
}

interface Member {
  upstream: Upstream
  downUntil: number
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** Round-robin pool with failover. */
export class UpstreamPool implements Upstream {
  readonly id: string
  readonly #members: Member[]
  readonly #failTimeout: number
  #next = 0
  #downCount = 0

  constructor (members: Upstream[], options: PoolOptions) {
    if (members.length === 0) throw new ProxyError('PORTICO_ERR_UPSTREAM_UNAVAILABLE', 'a pool needs at least one member')
    this.#members = members.map((upstream) => ({ upstream, downUntil: 0 }))
    this.#failTimeout = options.failTimeout
    this.id = members.length === 1 ? members[0].id : `pool(${members.map((m) => m.id).join(',')})`
  }

  /** Members in order, for tests and `portico check`. */
  get members (): readonly Upstream[] {
    return this.#members.map((m) => m.upstream)
  }

  dispatch (req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler): void {
    new Attempt(this, req, opts, handler).start()
  }

  /**
   * Picks the next member in round-robin order, skipping those marked down and those in `exclude`. When every
   * candidate is down, the next not-excluded one is returned anyway (so a recovered node is found); null when
   * all are excluded.
   */
  select (exclude: number): number {
    const n = this.#members.length
    if (n === 1) return exclude & 1 ? -1 : 0
    const now = this.#downCount > 0 ? Date.now() : 0
    let fallback = -1
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n
      if (i < 31 && (exclude & (1 << i)) !== 0) continue
      const m = this.#members[i]
      if (m.downUntil !== 0) {
        if (m.downUntil > now) {
          if (fallback === -1) fallback = i
          continue
        }
        m.downUntil = 0
        this.#downCount--
      }
      this.#next = (i + 1) % n
      return i
    }
    if (fallback !== -1) this.#next = (fallback + 1) % n
    return fallback
  }

  /** @internal */
  memberAt (i: number): Upstream {
    return this.#members[i].upstream
  }

  /** @internal Passive health: skip this member for failTimeout. */
  markDown (i: number): void {
    if (this.#failTimeout <= 0 || this.#members.length === 1) return
    const m = this.#members[i]
    if (m.downUntil === 0) this.#downCount++
    m.downUntil = Date.now() + this.#failTimeout
  }

  get size (): number {
    return this.#members.length
  }

  async close (): Promise<void> {
    await Promise.all(this.#members.map((m) => m.upstream.close()))
  }
}

/** One exchange's attempts through a pool; forwards callbacks to the exchange's handler. */
class Attempt implements ResponseHandler {
  readonly #pool: UpstreamPool
  readonly #req: UpstreamRequest
  readonly #opts: DispatchOptions
  readonly #handler: ResponseHandler
  #tried = 0
  #attempts = 0
  #index = -1
  #responded = false
  #aborted = false

  constructor (pool: UpstreamPool, req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler) {
    this.#pool = pool
    this.#req = req
    this.#opts = opts
    this.#handler = handler
  }

  start (): void {
    const i = this.#pool.select(this.#tried)
    if (i === -1) {
      this.#handler.onError(new ProxyError('PORTICO_ERR_UPSTREAM_UNAVAILABLE'))
      return
    }
    this.#send(i)
  }

  #send (i: number): void {
    this.#index = i
    this.#attempts++
    if (i < 31) this.#tried |= 1 << i
    const member = this.#pool.memberAt(i)
    ;(this.#handler as Partial<AttemptObserver>).onAttempt?.(member.id)
    try {
      member.dispatch(this.#req, this.#opts, this)
    } catch (err) {
      this.onError(err as Error)
    }
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#handler.onConnect((reason?: Error) => {
      this.#aborted = true
      abort(reason)
    })
  }

  onHeaders (status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.#responded = true
    return this.#handler.onHeaders(status, rawHeaders, resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    return this.#handler.onData(chunk)
  }

  onComplete (rawTrailers: Buffer[] | string[] | null): void {
    this.#handler.onComplete(rawTrailers)
  }

  onUpgrade (status: number, rawHeaders: Buffer[], socket: Duplex): void {
    this.#responded = true
    this.#handler.onUpgrade!(status, rawHeaders, socket)
  }

  onError (err: Error): void {
    if (this.#responded || this.#aborted) {
      this.#handler.onError(err)
      return
    }
    const classified = classifyUpstreamError(err)
    const body = this.#req.body
    const bodyUntouched = body === null || !body.readableDidRead
    let retry = false
    if (failedBeforeSending(classified)) {
      this.#pool.markDown(this.#index)
      retry = bodyUntouched
    } else if (classified.code === 'PORTICO_ERR_UPSTREAM_RESET') {
      retry = body === null && IDEMPOTENT.has(this.#req.method)
    }
    if (retry) {
      let next = this.#pool.select(this.#tried)
      // A reset on a reused connection is worth one more try on the same node when it is the only one.
      if (next === -1 && classified.code === 'PORTICO_ERR_UPSTREAM_RESET' && this.#attempts < 2) next = this.#index
      if (next !== -1 && this.#attempts < Math.max(2, Math.min(this.#pool.size, 5))) {
        this.#send(next)
        return
      }
    }
    this.#handler.onError(classified)
  }
}
