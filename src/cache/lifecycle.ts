/**
 * The proxy cache across a proxy's life: created with the proxy, kept across config reloads (with everything it
 * holds) unless its own settings change, and closed with the proxy. A cache replaced by a reload is closed only
 * after the drain time, because responses may still be streaming from its store.
 */
import type { ResolvedCache } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'
import type { HttpCache } from './http-cache.js'
import { createCache } from './index.js'

/** The cache in force, if any. */
export class CacheLifecycle {
  readonly #logger: Logger
  #cache: HttpCache | null
  #settings: string

  constructor (settings: ResolvedCache | null, logger: Logger) {
    this.#logger = logger
    this.#cache = settings === null ? null : createCache(settings, logger)
    this.#settings = JSON.stringify(settings)
  }

  /** The cache in force, or null when no route caches. */
  get cache (): HttpCache | null {
    return this.#cache
  }

  /** Takes a new config's cache settings; returns the cache in force afterwards. */
  reload (settings: ResolvedCache | null, drainTimeout: number): HttpCache | null {
    const text = JSON.stringify(settings)
    if (text === this.#settings) return this.#cache
    const old = this.#cache
    this.#cache = settings === null ? null : createCache(settings, this.#logger)
    this.#settings = text
    if (old !== null) {
      const timer = setTimeout(() => {
        old.abortFills()
        old.close().catch((err: unknown) => this.#logger.warn({ err }, 'closing the previous cache failed'))
      }, drainTimeout)
      timer.unref()
    }
    return this.#cache
  }

  /** Stops background refreshes and fills nobody waits for (they must not hold the pools open at close). */
  abortFills (): void {
    this.#cache?.abortFills()
  }

  async close (): Promise<void> {
    await this.#cache?.close()
  }
}
