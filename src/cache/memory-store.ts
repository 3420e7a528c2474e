/**
 * The default store: an LRU (lru-cache) bounded by bytes. One LRU entry per primary key holds its variants; the
 * entry's size is the sum of its bodies and heads, so `maxSize` bounds what the process holds. Reads are
 * synchronous: a hit costs no promise.
 */
import { LRUCache } from 'lru-cache'
import type { BodyWriter, CacheStore, PurgeFilter, StoredMeta, StoredResponse } from './store.js'

export interface MemoryStoreOptions {
  /** Total bytes of bodies and heads. */
  maxSize: number
  /** Largest single response body. */
  maxObjectSize: number
}

/** A primary key's stored variants. Replaced (not mutated) on every change so the LRU recomputes its size. */
interface Bucket {
  variants: StoredResponse[]
  size: number
}

/**
 * Rough bytes of a head in the JS heap: the flat header list, the policy object (which keeps its own copy of the
 * response fields, and the request fields when the response varies), and object overheads.
 */
function headSize (meta: StoredMeta): number {
  let n = 1024 + meta.key.length * 4 + meta.path.length * 2
  for (const h of meta.headers) n += 2 * h.length + 32
  return n
}

/**
 * A chunk that is a small view of a larger buffer (a socket read, an 8 KiB pool slab) would keep all of that
 * buffer alive for as long as the entry lives, and `maxSize` would not see it: store a right-sized copy instead.
 */
function compact (chunk: Buffer): Buffer {
  if (chunk.buffer.byteLength <= chunk.length * 2) return chunk
  const copy = Buffer.allocUnsafeSlow(chunk.length)
  chunk.copy(copy)
  return copy
}

export class MemoryStore implements CacheStore {
  readonly name = 'memory'
  readonly #lru: LRUCache<string, Bucket>
  readonly #maxObjectSize: number

  constructor (opts: MemoryStoreOptions) {
    this.#maxObjectSize = opts.maxObjectSize
    this.#lru = new LRUCache<string, Bucket>({
      maxSize: Math.max(1, opts.maxSize),
      sizeCalculation: (b) => Math.max(1, b.size),
      ttlAutopurge: false,
      allowStale: false
    })
  }

  get bytes (): number {
    return this.#lru.calculatedSize
  }

  get (key: string): StoredResponse[] {
    const bucket = this.#lru.get(key)
    if (bucket === undefined) return []
    const now = Date.now()
    // An entry past its own expiry is dropped even if its bucket lives on for a sibling variant.
    for (const v of bucket.variants) {
      if (v.meta.expires <= now) return this.#without(key, bucket, (m) => m.expires <= now)
    }
    return bucket.variants
  }

  async * body (meta: StoredMeta): AsyncIterable<Buffer> {
    const found = this.#lru.get(meta.key)?.variants.find((v) => v.meta.bodyId === meta.bodyId)
    if (found?.chunks == null) throw new Error('stored body is gone')
    yield * found.chunks
  }

  open (key: string, size: number | null): BodyWriter | null {
    if (size !== null && size > this.#maxObjectSize) return null
    const chunks: Buffer[] = []
    let bytes = 0
    let dead = false
    return {
      write: (chunk) => {
        if (dead) return
        bytes += chunk.length
        if (bytes > this.#maxObjectSize) {
          dead = true
          chunks.length = 0
          return
        }
        chunks.push(compact(chunk))
      },
      commit: (meta) => {
        if (dead) return
        dead = true
        this.#put(key, { meta: { ...meta, size: bytes }, chunks })
      },
      abort: () => {
        dead = true
        chunks.length = 0
      }
    }
  }

  update (meta: StoredMeta): void {
    const bucket = this.#lru.peek(meta.key)
    if (bucket === undefined) return
    const i = bucket.variants.findIndex((v) => v.meta.bodyId === meta.bodyId)
    if (i === -1) return
    const variants = bucket.variants.slice()
    variants[i] = { meta, chunks: variants[i].chunks }
    this.#set(meta.key, variants)
  }

  delete (key: string): number {
    const bucket = this.#lru.peek(key)
    if (bucket === undefined) return 0
    this.#lru.delete(key)
    return bucket.variants.length
  }

  async purge (filter: PurgeFilter): Promise<number> {
    if ('key' in filter) return this.delete(filter.key)
    let removed = 0
    for (const [key, bucket] of this.#lru.entries()) {
      const match = 'tag' in filter
        ? (m: StoredMeta) => m.tags.includes(filter.tag)
        : (m: StoredMeta) => m.host === filter.host && m.path.startsWith(filter.pathPrefix)
      const before = bucket.variants.length
      const left = this.#without(key, bucket, match)
      removed += before - left.length
    }
    return removed
  }

  async close (): Promise<void> {
    this.#lru.clear()
  }

  #put (key: string, entry: StoredResponse): void {
    const bucket = this.#lru.peek(key)
    const variants = bucket === undefined ? [] : bucket.variants.filter((v) => v.meta.variant !== entry.meta.variant && v.meta.expires > Date.now())
    variants.unshift(entry)
    this.#set(key, variants)
  }

  #without (key: string, bucket: Bucket, drop: (m: StoredMeta) => boolean): StoredResponse[] {
    const left = bucket.variants.filter((v) => !drop(v.meta))
    if (left.length === bucket.variants.length) return left
    if (left.length === 0) this.#lru.delete(key)
    else this.#set(key, left)
    return left
  }

  #set (key: string, variants: StoredResponse[]): void {
    let size = 0
    let expires = 0
    for (const v of variants) {
      size += v.meta.size + headSize(v.meta)
      if (v.meta.expires > expires) expires = v.meta.expires
    }
    const ttl = Math.max(1, expires - Date.now())
    this.#lru.set(key, { variants, size }, { ttl })
  }
}
