/**
 * One request's attempts through a pool: select → dispatch → retry. The retry decision reads the error registry's
 * rule for the failure (errors.ts, `RetryRule`) and nothing else:
 * - `any` (the connection never formed): the member is marked down, and the request goes to another member if its
 *   body was not read yet;
 * - `idempotent` (a reset before any response byte): again only for an idempotent method with no body (RFC 9110
 *   §9.2.2), which covers the keep-alive race where a node closes an idle connection as a request is written on it.
 * A request body that was read even partly is never replayed, and nothing is retried once the response started.
 */
import type { Duplex } from 'node:stream'
import { classifyUpstreamError } from '../classify.js'
import { ProxyError } from '../errors.js'
import { ForwardingHandler } from '../upstream/forwarding-handler.js'
import type { DispatchOptions, ResponseHandler, UpstreamRequest } from '../upstream/types.js'
import type { UpstreamPool } from './pool.js'

/** RFC 9110 §9.2.2. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** The attempts of one request; passes the response to the request's handler. */
export class Attempt extends ForwardingHandler {
  readonly #pool: UpstreamPool
  readonly #req: UpstreamRequest
  readonly #opts: DispatchOptions
  #tried = 0
  #attempts = 0
  #index = -1
  #responded = false
  #aborted = false

  constructor (pool: UpstreamPool, req: UpstreamRequest, opts: DispatchOptions, handler: ResponseHandler) {
    super(handler)
    this.#pool = pool
    this.#req = req
    this.#opts = opts
  }

  start (): void {
    const i = this.#pool.select(this.#tried)
    if (i === -1) {
      this.inner.onError(new ProxyError('PORTICO_ERR_UPSTREAM_UNAVAILABLE'))
      return
    }
    this.#send(i)
  }

  #send (i: number): void {
    this.#index = i
    this.#attempts++
    if (i < 31) this.#tried |= 1 << i
    const member = this.#pool.memberAt(i)
    this.inner.onAttempt?.(member.id)
    try {
      member.dispatch(this.#req, this.#opts, this)
    } catch (err) {
      this.onError(err as Error)
    }
  }

  override onConnect (abort: (reason?: Error) => void): void {
    this.inner.onConnect((reason?: Error) => {
      this.#aborted = true
      abort(reason)
    })
  }

  override onHeaders (status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.#responded = true
    return this.inner.onHeaders(status, rawHeaders, resume, statusText)
  }

  override onUpgrade (status: number, rawHeaders: Buffer[], socket: Duplex): void {
    this.#responded = true
    super.onUpgrade(status, rawHeaders, socket)
  }

  override onError (err: Error): void {
    if (this.#responded || this.#aborted) {
      this.inner.onError(err)
      return
    }
    const classified = classifyUpstreamError(err)
    const body = this.#req.body
    let retry = false
    if (classified.retry === 'any') {
      this.#pool.markDown(this.#index)
      retry = body === null || !body.readableDidRead
    } else if (classified.retry === 'idempotent') {
      retry = body === null && IDEMPOTENT.has(this.#req.method)
    }
    if (retry) {
      let next = this.#pool.select(this.#tried)
      // A reset on a reused connection is worth one more try on the same node when it is the only one.
      if (next === -1 && classified.retry === 'idempotent' && this.#attempts < 2) next = this.#index
      if (next !== -1 && this.#attempts < Math.max(2, Math.min(this.#pool.size, 5))) {
        this.#send(next)
        return
      }
    }
    this.inner.onError(classified)
  }
}
