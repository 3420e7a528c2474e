/**
 * A client waiting on a fill (fill.ts): its request, how to send it upstream on its own, its Cache-Status so far,
 * and its place in the shared body (chunk-feed.ts).
 */
import type { CacheStatus } from './cache-status.js'
import type { FeedReader } from './chunk-feed.js'
import type { Delivery } from './deliver.js'
import type { CacheClient, CacheRequest, Send } from './types.js'

/** A client waiting on a fill. */
export class Waiter implements FeedReader {
  readonly client: CacheClient
  readonly cr: CacheRequest
  readonly send: Send
  /** Why this request went forward. */
  readonly fwd: CacheStatus
  /** It joined another request's fill. */
  readonly collapsed: boolean
  timer: NodeJS.Timeout | null = null
  delivery: Delivery | null = null
  /** Index of the next chunk to send. */
  pos = 0
  done = false

  constructor (client: CacheClient, cr: CacheRequest, send: Send, fwd: CacheStatus, collapsed: boolean) {
    this.client = client
    this.cr = cr
    this.send = send
    this.fwd = fwd
    this.collapsed = collapsed
  }

  /** Its Cache-Status so far. */
  get status (): CacheStatus {
    return this.collapsed ? this.fwd.collapsed() : this.fwd
  }
}
