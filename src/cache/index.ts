/**
 * Builds the proxy cache for a resolved config: the store (memory by default, Redis when configured) and the
 * HttpCache around it. The Redis store (and ioredis, ~19 MiB of RSS) is imported only when configured; until
 * it has loaded, the store answers like an unavailable Redis and requests bypass the cache.
 */
import type { ResolvedCache } from '../config/resolved.js'
import type { Logger } from '../observability/logger.js'
import { HttpCache } from './http-cache.js'
import { MemoryStore } from './memory-store.js'
import type { BodyWriter, CacheStore, PurgeFilter, StoredMeta, StoredResponse } from './store.js'

export function createCache (settings: ResolvedCache, logger: Logger): HttpCache {
  let store: CacheStore
  if (settings.store === 'redis' && settings.redis !== null) {
    const redis = settings.redis
    store = new DeferredStore('redis', import('./redis-store.js').then(({ RedisStore }) =>
      new RedisStore({ ...redis, maxObjectSize: settings.maxObjectSize, logger })))
  } else {
    store = new MemoryStore({ maxSize: settings.maxSize, maxObjectSize: settings.maxObjectSize })
  }
  return new HttpCache(store, settings, logger)
}

/** A store whose implementation is still loading: fails every call until it is there, then forwards. */
class DeferredStore implements CacheStore {
  readonly name: string
  #store: CacheStore | null = null
  readonly #ready: Promise<CacheStore>
  readonly #purgeListeners: ((filter: PurgeFilter) => void)[] = []

  constructor (name: string, ready: Promise<CacheStore>) {
    this.name = name
    this.#ready = ready
    ready.then((s) => {
      this.#store = s
      for (const l of this.#purgeListeners) s.onPurge?.(l)
    }, () => {})
  }

  #s (): CacheStore {
    if (this.#store === null) throw new Error(`${this.name} cache store is still loading`)
    return this.#store
  }

  get (key: string): StoredResponse[] | Promise<StoredResponse[]> { return this.#s().get(key) }
  body (meta: StoredMeta): AsyncIterable<Buffer> { return this.#s().body(meta) }
  open (key: string, size: number | null): BodyWriter | null { return this.#s().open(key, size) }
  update (meta: StoredMeta): void | Promise<void> { return this.#s().update(meta) }
  delete (key: string): number | Promise<number> { return this.#s().delete(key) }
  async purge (filter: PurgeFilter): Promise<number> { return await (await this.#ready).purge(filter) }
  onPurge (listener: (filter: PurgeFilter) => void): void {
    if (this.#store !== null) this.#store.onPurge?.(listener)
    else this.#purgeListeners.push(listener)
  }

  async close (): Promise<void> {
    await (await this.#ready.catch(() => null))?.close()
  }
}

export { HttpCache } from './http-cache.js'
export type { CacheStats } from './http-cache.js'
export type { CacheStore, PurgeFilter, StoredMeta, StoredResponse, BodyWriter } from './store.js'
export { MemoryStore } from './memory-store.js'
