/**
 * The store as the cache's rooms use it: every write guarded so that a failing store (Redis down or hung) never
 * throws at a request; failures are counted (`storeErrors`) and logged once per outage, and the first success after
 * an outage is logged too. Reads stay the caller's to guard, because a failed read means "bypass the cache".
 */
import type { Logger } from '../observability/logger.js'
import type { BodyWriter, CacheStore, StoredMeta } from './store.js'
import type { CacheStats } from './types.js'

export class StoreGuard {
  readonly store: CacheStore
  readonly #stats: CacheStats
  readonly #logger: Logger
  #down = false

  constructor (store: CacheStore, stats: CacheStats, logger: Logger) {
    this.store = store
    this.#stats = stats
    this.#logger = logger
  }

  /** Opens a writer, or null when the store declines or fails. */
  open (key: string, size: number | null): BodyWriter | null {
    try {
      return this.store.open(key, size)
    } catch (err) {
      this.failed(err)
      return null
    }
  }

  /** Commits a stored response; a promise (never rejecting) while a shared store writes it, else undefined. */
  commit (writer: BodyWriter, meta: StoredMeta): Promise<void> | undefined {
    let r
    try {
      r = writer.commit(meta)
    } catch (err) {
      this.failed(err)
      return undefined
    }
    this.#stats.stored++
    if (r instanceof Promise) return r.then(() => this.up(), (err: unknown) => this.failed(err))
    return undefined
  }

  /** Replaces a stored head (304 revalidation, or `expires: 0` to retire it). */
  update (meta: StoredMeta): void {
    this.#settle(() => this.store.update(meta))
  }

  /** Removes every variant of a key. */
  delete (key: string): void {
    this.#settle(() => this.store.delete(key))
  }

  /** Counts a failure; the first of an outage is logged. */
  failed (err: unknown): void {
    this.#stats.storeErrors++
    if (!this.#down) {
      this.#down = true
      this.#logger.warn({ err, store: this.store.name }, 'cache store unavailable: requests bypass the cache until it is back')
    }
  }

  /** A call succeeded: an outage, if any, is over. */
  up (): void {
    if (this.#down) {
      this.#down = false
      this.#logger.info({ store: this.store.name }, 'cache store available again')
    }
  }

  #settle (op: () => unknown): void {
    try {
      const r = op()
      if (r instanceof Promise) r.then(() => this.up(), (err: unknown) => this.failed(err))
    } catch (err) {
      this.failed(err)
    }
  }
}
