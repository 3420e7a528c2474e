/**
 * One request's way through a pool: wait in the queue when the pool is full → pick a member → dispatch → retry.
 * Each failure is judged by the error registry (errors.ts): its rule (`any`, `idempotent`, `never`) says which
 * requests may be sent again, its condition (`connect-failure`, `reset`, `timeout`) must be in the pool's
 * `retry.on`, as must a retried status. A retry needs a request that can be replayed — no body, a body not read yet
 * (after a connection failure), or one kept by `ReplayBody` for an idempotent method — attempts left, a member not
 * tried yet, and room in the retry budget (retries in flight ≤ budget × requests in flight, at least 10; failover after
 * a connection that never formed is not counted: nothing reached a node). It waits a backoff with full jitter first. Nothing is retried once the response head went on to the client.
 *
 * Every outcome feeds passive health (outlier.ts); a sticky pool's attempt adds the cookie naming its member.
 */
import type { Duplex } from 'node:stream'
import { classifyUpstreamError } from '../classify.js'
import { ProxyError, type RetryCondition, type RetryRule } from '../errors.js'
import { ForwardingHandler } from '../upstream/forwarding-handler.js'
import type { DispatchOptions, ResponseHandler, UpstreamRequest } from '../upstream/types.js'
import { cookieValue, stickySetCookie } from './affinity.js'
import type { Member } from './member.js'
import { NoPick, type UpstreamPool } from './pool.js'
import type { Waiter } from './queue.js'
import { ReplayBody } from './replay-body.js'

/** RFC 9110 §9.2.2. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** Retries in flight always allowed, whatever the budget: enough for the requests a dying node had in flight (Linkerd's budget has a floor of 10 retries a second). */
const MIN_RETRIES = 10

/** The reason an attempt is aborted when its status is retried; never reaches the client. */
const DISCARDED = new Error('response discarded for a retry')

/** The attempts of one request; passes the chosen response to the request's handler. */
export class Attempt extends ForwardingHandler implements Waiter {
  readonly #pool: UpstreamPool
  readonly #req: UpstreamRequest
  readonly #opts: DispatchOptions
  #member: Member | null = null
  /** The current attempt holds a slot on #member (released once). */
  #holding = false
  #tried: Member[] | null = null
  #attempts = 0
  #responded = false
  #done = false
  #aborted: Error | null = null
  #abort: ((reason?: Error) => void) | null = null
  /** The current attempt was aborted to retry its status; its onError starts the next one. */
  #discarded = 0
  #timer: NodeJS.Timeout | null = null
  #queued = false
  /** This request holds one of the pool's retries in flight. */
  #retryCounted = false
  #lastError: ProxyError | null = null
  /** The failure of the attempt a retry follows (for the access log, once the retry is sent). */
  #retryCode = ''
  #sticky: string | null = null
  #setCookie: string | null = null
  #replay: ReplayBody | null = null

  constructor (pool: UpstreamPool, req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler) {
    super(handler)
    this.#pool = pool
    this.#req = req
    this.#opts = opts
  }

  start (): void {
    const pool = this.#pool
    pool.requests++
    this.inner.onConnect(this.#clientAbort)
    if (this.#aborted !== null) {
      this.#finish()
      this.inner.onError(this.#aborted)
      return
    }
    const s = pool.settings
    if (s.sticky !== null) this.#sticky = cookieValue(this.#req.headers, s.sticky.cookie)
    const body = this.#req.body
    if (body !== null && s.retry.attempts > 1 && IDEMPOTENT.has(this.#req.method) && (s.retry.timeout || s.retry.reset || s.retry.statuses.length !== 0)) {
      const length = contentLength(this.#req.headers)
      if (length === -1 || length <= s.retry.bufferBody) this.#replay = new ReplayBody(body, s.retry.bufferBody)
    }
    switch (this.#place()) {
      case 'wait':
        if (!pool.queue.add(this, s.queue.size, s.queue.timeout)) {
          this.#fail(this.#overloaded())
          return
        }
        this.#queued = true
        return
      case 'none':
        this.#fail(this.#unavailable())
    }
  }

  /** Sends to a member if one can take the request now. */
  #place (): 'sent' | 'wait' | 'none' {
    const pool = this.#pool
    if (pool.full) return 'wait'
    const m = pool.pick(this.#req, this.#tried, this.#sticky)
    if (m !== null) {
      this.#send(m)
      return 'sent'
    }
    return pool.noPick === NoPick.Limited ? 'wait' : 'none'
  }

  // --- Waiter (queue.ts) ------------------------------------------------------------------------------------

  resume (): boolean {
    if (this.#aborted !== null || this.#done) return true
    const placed = this.#place()
    if (placed === 'wait') return false
    this.#queued = false
    if (placed === 'none') this.#fail(this.#unavailable())
    return true
  }

  expire (): void {
    this.#queued = false
    if (!this.#done) this.#fail(this.#overloaded())
  }

  #overloaded (): ProxyError {
    this.#pool.stats.overloaded++
    const err = new ProxyError('PORTICO_ERR_UPSTREAM_OVERLOADED')
    err.retryAfter = 1
    return err
  }

  #unavailable (): ProxyError {
    this.#pool.stats.noHealthyUpstream++
    const err = new ProxyError('PORTICO_ERR_NO_HEALTHY_UPSTREAM')
    err.retryAfter = this.#pool.retryAfter()
    return err
  }

  // --- sending ----------------------------------------------------------------------------------------------

  #send (m: Member): void {
    const pool = this.#pool
    this.#member = m
    this.#attempts++
    pool.acquire(m)
    this.#holding = true
    this.inner.onAttempt?.(m.id)
    const sticky = pool.settings.sticky
    this.#setCookie = sticky !== null && m.stickyValue !== this.#sticky ? stickySetCookie(sticky, m.stickyValue!, this.#req.clientTls === true) : null
    let req = this.#req
    if (this.#replay !== null) req = { ...req, body: this.#replay.next() }
    try {
      m.transport.dispatch(req, this.#opts, this)
    } catch (err) {
      this.onError(err as Error)
    }
  }

  readonly #clientAbort = (reason?: Error): void => {
    if (this.#aborted !== null || this.#done) return
    this.#aborted = reason ?? new ProxyError('PORTICO_ERR_CLIENT_ABORTED')
    if (this.#timer !== null || this.#queued) {
      // Waiting for a backoff or in the queue: nothing is in flight to abort.
      if (this.#timer !== null) clearTimeout(this.#timer)
      this.#timer = null
      if (this.#queued) this.#pool.queue.cancel(this)
      this.#queued = false
      this.#finish()
      this.inner.onError(this.#aborted)
      return
    }
    this.#abort?.(this.#aborted)
  }

  override onConnect (abort: (reason?: Error) => void): void {
    this.#abort = abort
    if (this.#aborted !== null) abort(this.#aborted)
  }

  override onHeaders (status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean {
    if (this.#discarded !== 0) return false
    if (status < 200) return this.inner.onHeaders(status, rawHeaders, resume, statusText)
    const pool = this.#pool
    const m = this.#member!
    const passive = pool.passive
    if (passive !== null) {
      if (passive.isFailureStatus(status)) passive.failure(pool.members, m, `status ${status}`, Date.now())
      else if (m.trial || m.consecutiveFailures !== 0) passive.success(m, Date.now())
    }
    // A retried status is discarded only when another member exists to try (else the node's answer stands).
    if (pool.settings.retry.statuses.length !== 0 && pool.settings.retry.statuses.includes(status) &&
      pool.members.length > (this.#tried?.length ?? 0) + 1 && this.#mayRetry('status', 'idempotent')) {
      this.#discarded = status
      this.#abort?.(DISCARDED)
      return false
    }
    this.#responded = true
    if (this.#setCookie !== null) {
      if (rawHeaders.length !== 0 && typeof rawHeaders[0] !== 'string') (rawHeaders as Buffer[]).push(Buffer.from('set-cookie'), Buffer.from(this.#setCookie))
      else (rawHeaders as string[]).push('set-cookie', this.#setCookie)
    }
    return this.inner.onHeaders(status, rawHeaders, resume, statusText)
  }

  override onUpgrade (status: number, rawHeaders: Buffer[], socket: Duplex): void {
    this.#responded = true
    const m = this.#member
    if (m !== null && this.#pool.passive !== null && (m.trial || m.consecutiveFailures !== 0)) this.#pool.passive.success(m, Date.now())
    this.#release()
    this.#finish()
    super.onUpgrade(status, rawHeaders, socket)
  }

  override onComplete (rawTrailers: Buffer[] | string[] | null): void {
    this.#release()
    this.#finish()
    this.inner.onComplete(rawTrailers)
  }

  override onError (err: Error): void {
    const m = this.#member
    if (this.#discarded !== 0) {
      const status = this.#discarded
      this.#discarded = 0
      this.#release()
      if (this.#aborted !== null) {
        this.#finish()
        this.inner.onError(this.#aborted)
        return
      }
      this.#lastError = null
      this.#retryCode = `status ${status}`
      this.#retry(null)
      return
    }
    if (this.#responded || this.#aborted !== null || m === null) {
      this.#release()
      this.#finish()
      this.inner.onError(err)
      return
    }
    const classified = classifyUpstreamError(err)
    const pool = this.#pool
    if (pool.passive !== null && pool.passive.counts(classified.condition)) pool.passive.failure(pool.members, m, classified.code, Date.now())
    this.#release()
    if (classified.condition !== undefined && this.#mayRetry(classified.condition, classified.retry)) {
      this.#retryCode = classified.code
      this.#retry(classified)
      return
    }
    this.#finish()
    this.inner.onError(classified)
  }

  // --- retries ----------------------------------------------------------------------------------------------

  /** Whether a failed attempt may be made again: condition on, replayable, attempts and budget left. */
  #mayRetry (condition: RetryCondition | 'status', rule: RetryRule): boolean {
    const pool = this.#pool
    const r = pool.settings.retry
    if (this.#attempts >= r.attempts) return false
    if (condition === 'connect-failure' ? !r.connectFailure : condition === 'reset' ? !r.reset : condition === 'timeout' ? !r.timeout : false) return false
    const body = this.#req.body
    if (rule === 'any') {
      if (body !== null && !(this.#replay !== null ? this.#replay.replayable : !body.readableDidRead)) return false
    } else if (rule === 'idempotent') {
      if (!IDEMPOTENT.has(this.#req.method)) return false
      if (body !== null && (this.#replay === null || !this.#replay.replayable)) return false
    } else {
      return false
    }
    // A connection that never formed is failover, not a retry: nothing reached a node, so nothing is amplified.
    if (condition === 'connect-failure') return true
    return this.#budgetAllows()
  }

  /** Retries in flight (dispatched, not backing off) ≤ budget × requests in the pool, never fewer than 10. */
  #budgetAllows (): boolean {
    const pool = this.#pool
    if (pool.retries < Math.max(MIN_RETRIES, pool.settings.retry.budget * pool.requests)) return true
    pool.stats.retriesDeniedByBudget++
    return false
  }

  /** Schedules the next attempt after a backoff with full jitter (AWS's "full jitter": uniform in [0, cap]). */
  #retry (err: ProxyError | null): void {
    const pool = this.#pool
    ;(this.#tried ??= []).push(this.#member!)
    this.#member = null
    this.#lastError = err
    const r = pool.settings.retry
    const cap = Math.min(r.maxBackoff, r.backoff * 2 ** (this.#attempts - 1))
    const delay = Math.random() * cap
    if (delay < 1) {
      this.#placeRetry()
      return
    }
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#placeRetry()
    }, delay)
  }

  #placeRetry (): void {
    const pool = this.#pool
    // The budget is checked again when the retry is sent: others may have taken it during the backoff.
    const counted = this.#lastError?.condition !== 'connect-failure'
    if (counted && !this.#budgetAllows()) {
      this.#finish()
      this.inner.onError(this.#lastError ?? this.#unavailable())
      return
    }
    let m = pool.full ? null : pool.pick(this.#req, this.#tried, this.#sticky)
    const last = this.#tried![this.#tried!.length - 1]
    // A reset on a reused connection is worth one more try on the same node when it is the only one.
    if (m === null && !pool.full && this.#lastError?.condition === 'reset' && this.#attempts < 2 && pool.members.length === 1 && !last.removed) m = last
    if (m === null) {
      this.#finish()
      this.inner.onError(this.#lastError ?? this.#unavailable())
      return
    }
    pool.stats.retries++
    this.inner.onRetry?.(last.id, this.#retryCode)
    if (counted) {
      this.#retryCounted = true
      pool.retries++
    }
    this.#send(m)
  }

  // --- bookkeeping ------------------------------------------------------------------------------------------

  /** The current attempt is over: its member takes another request. */
  #release (): void {
    if (!this.#holding) return
    this.#holding = false
    if (this.#retryCounted) {
      this.#retryCounted = false
      this.#pool.retries--
    }
    this.#pool.release(this.#member!)
  }

  #finish (): void {
    if (this.#done) return
    this.#done = true
    this.#member = null
    this.#pool.requests--
    if (this.#retryCounted) {
      this.#retryCounted = false
      this.#pool.retries--
    }
  }

  #fail (err: ProxyError): void {
    this.#finish()
    this.inner.onError(err)
  }
}

/** The Content-Length of a flat header list, or -1 when absent (chunked). */
function contentLength (headers: readonly string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === 14 && headers[i].toLowerCase() === 'content-length') return Number(headers[i + 1])
  }
  return -1
}
