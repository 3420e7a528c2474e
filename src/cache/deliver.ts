/**
 * Writing a response into a ResponseHandler (the client's exchange) from the cache: one `Delivery` per client,
 * with backpressure (a `false` from `onData` pauses until the handler calls `resume`) and client abort (the
 * handler's `abort` stops the delivery and reports the error back to it, as an upstream would).
 */
import type { ResponseHandler } from '../upstream/types.js'
import { ProxyError } from '../errors.js'

export class Delivery {
  readonly handler: ResponseHandler
  #paused = false
  #aborted = false
  #onResume: (() => void)[] = []
  #onAbort: (() => void) | null

  constructor (handler: ResponseHandler, onAbort: (() => void) | null = null) {
    this.handler = handler
    this.#onAbort = onAbort
  }

  get aborted (): boolean {
    return this.#aborted
  }

  get paused (): boolean {
    return this.#paused
  }

  /** Sends the head. False when the client is gone (the delivery is then aborted). */
  start (status: number, headers: string[]): boolean {
    this.handler.onConnect(this.#abort)
    if (this.#aborted) return false
    const ok = this.handler.onHeaders(status, headers as unknown as Buffer[], this.#resume, '')
    if (!ok && !this.#aborted) {
      this.#aborted = true
      this.handler.onError(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
    }
    return !this.#aborted
  }

  /** Sends a chunk; false when the client wants a pause (call `whenResumed`) or is gone. */
  push (chunk: Buffer): boolean {
    if (this.#aborted) return false
    if (this.handler.onData(chunk)) return true
    this.#paused = true
    return false
  }

  /** Runs `fn` once the client drained (immediately if it is not paused). */
  whenResumed (fn: () => void): void {
    if (!this.#paused) fn()
    else this.#onResume.push(fn)
  }

  end (): void {
    if (this.#aborted) return
    this.#aborted = true
    this.handler.onComplete(null)
  }

  fail (err: Error): void {
    if (this.#aborted) return
    this.#aborted = true
    this.handler.onError(err)
  }

  /** Sends a whole in-memory body (chunks) with backpressure, then ends. */
  sendChunks (chunks: Buffer[], from = 0): void {
    for (let i = from; i < chunks.length; i++) {
      if (!this.push(chunks[i])) {
        if (this.#aborted) return
        this.whenResumed(() => this.sendChunks(chunks, i + 1))
        return
      }
    }
    this.end()
  }

  /** Sends a body read from an async source with backpressure, then ends; a read failure aborts the response. */
  sendAsync (source: AsyncIterator<Buffer>, first: Buffer[] = []): void {
    const step = (): void => {
      source.next().then((r) => {
        if (this.#aborted) {
          void source.return?.()
          return
        }
        if (r.done === true) {
          this.end()
          return
        }
        if (this.push(r.value)) step()
        else this.whenResumed(step)
      }, (err: unknown) => this.fail(err as Error))
    }
    for (const c of first) {
      if (!this.push(c) && this.#aborted) return
    }
    this.whenResumed(step)
  }

  readonly #resume = (): void => {
    if (!this.#paused) return
    this.#paused = false
    const fns = this.#onResume
    this.#onResume = []
    for (const fn of fns) fn()
  }

  readonly #abort = (reason?: Error): void => {
    if (this.#aborted) return
    this.#aborted = true
    this.#onAbort?.()
    this.handler.onError(reason ?? new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
  }
}

/** Byte range `[start, end]` (inclusive) of `chunks`, as views (no copy). */
export function sliceChunks (chunks: Buffer[], start: number, end: number): Buffer[] {
  const out: Buffer[] = []
  let offset = 0
  for (const c of chunks) {
    const cEnd = offset + c.length
    if (cEnd > start && offset <= end) out.push(c.subarray(Math.max(0, start - offset), Math.min(c.length, end - offset + 1)))
    offset = cEnd
    if (offset > end) break
  }
  return out
}

/** The same range over an async source: skips to `start`, stops after `end`. */
export async function * sliceAsync (source: AsyncIterable<Buffer>, start: number, end: number): AsyncIterable<Buffer> {
  let offset = 0
  for await (const c of source) {
    const cEnd = offset + c.length
    if (cEnd > start && offset <= end) yield c.subarray(Math.max(0, start - offset), Math.min(c.length, end - offset + 1))
    offset = cEnd
    if (offset > end) return
  }
}
