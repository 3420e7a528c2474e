/**
 * The overload queue of a pool: requests over `maxRequests` (or finding every member at its own limit) wait here,
 * first in first out, for at most `queue.timeout`, and are started as members free up. A full queue or a wait that
 * times out is answered 503 PORTICO_ERR_UPSTREAM_OVERLOADED with Retry-After at once, without touching a node.
 */
import type { UpstreamPool } from './pool.js'

/** A request that can wait: started again when woken, failed when it times out or the pool stops. */
export interface Waiter {
  /** Try again to place the request; false when it must keep waiting. */
  resume (): boolean
  /** The wait ended without a member (timeout, pool stopped). */
  expire (): void
}

interface Entry { waiter: Waiter, timer: NodeJS.Timeout }

/** A bounded FIFO of waiting requests. */
export class WaitQueue {
  #entries: Entry[] = []

  get length (): number {
    return this.#entries.length
  }

  /** Adds a waiter; false when the queue is full (size 0: never wait). */
  add (waiter: Waiter, size: number, timeout: number): boolean {
    if (this.#entries.length >= size) return false
    const entry: Entry = {
      waiter,
      timer: setTimeout(() => {
        this.#remove(entry)
        waiter.expire()
      }, timeout)
    }
    this.#entries.push(entry)
    return true
  }

  /** Removes a waiter that gave up (its client left). */
  cancel (waiter: Waiter): void {
    const e = this.#entries.find((x) => x.waiter === waiter)
    if (e !== undefined) this.#remove(e)
  }

  /** A member freed up: start waiting requests, in order, while they can be placed. */
  wake (pool: UpstreamPool): void {
    while (this.#entries.length !== 0 && !pool.full) {
      const e = this.#entries.shift()!
      if (!e.waiter.resume()) {
        this.#entries.unshift(e)
        return
      }
      clearTimeout(e.timer)
    }
  }

  /** Fails every waiter (the pool is closing). */
  drain (): void {
    const all = this.#entries
    this.#entries = []
    for (const e of all) {
      clearTimeout(e.timer)
      e.waiter.expire()
    }
  }

  #remove (e: Entry): void {
    clearTimeout(e.timer)
    const i = this.#entries.indexOf(e)
    if (i !== -1) this.#entries.splice(i, 1)
  }
}
