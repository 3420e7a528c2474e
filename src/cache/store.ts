/**
 * The storage side of the proxy cache. A store keeps, per primary key (method + effective request URI), the
 * stored responses for that URI — one per Vary variant — and their bodies. It knows nothing of HTTP semantics:
 * the cache (http-cache.ts) decides what is stored, for how long and which variant answers a request.
 *
 * Every store passes the same conformance suite (test/conformance/cache-store.ts). Methods may answer
 * synchronously (the memory store does, so a hit costs no promise) or with a promise (Redis). A store that fails
 * (Redis down) throws or rejects; the cache then bypasses itself for that request and counts the failure.
 */

export type MaybePromise<T> = T | Promise<T>

/** One stored response head and what the cache needs to reuse it. Plain JSON: stores may serialise it. */
export interface StoredMeta {
  /** The primary key this response is stored under. */
  key: string
  /** Secondary key: the normalised values of the request fields named by Vary ("" without Vary). */
  variant: string
  /** Lower-case host (with port when not default) and origin-form path + query: used by purge. */
  host: string
  path: string
  status: number
  /** Response header section as flat `[name, value, ...]`, hop-by-hop fields removed. */
  headers: string[]
  /** http-cache-semantics CachePolicy.toObject(): freshness and validation state. */
  policy: object
  /** Surrogate keys / cache tags from Surrogate-Key and Cache-Tag. */
  tags: string[]
  /** Body length in bytes. */
  size: number
  /** Identifies the stored body; a replaced response gets a new one, so a reader never mixes two bodies. */
  bodyId: string
  /** Epoch ms after which the store may drop the entry (freshness + stale allowances + retention). */
  expires: number
  /** Chunks the body is stored in (stores that chunk, set at commit): checked before a body is served. */
  chunks?: number
}

/** A stored response: its head, and its body as chunks in memory or as an async source (streamed from Redis). */
export interface StoredResponse {
  meta: StoredMeta
  /** The whole body in memory, or null when it must be read with `CacheStore.body`. */
  chunks: Buffer[] | null
}

/** Streams a body into the store. Nothing is visible to readers until `commit`; `abort` discards it. */
export interface BodyWriter {
  /** Appends a chunk. The chunk is not reused by the caller, so a store may keep the reference. */
  write (chunk: Buffer): void
  /** Makes the response visible (replacing any stored response with the same key and variant). */
  commit (meta: StoredMeta): MaybePromise<void>
  abort (): void
}

/** What a purge matches. Exactly one of the three. */
export type PurgeFilter =
  | { key: string }
  | { host: string, pathPrefix: string }
  | { tag: string }

export interface CacheStore {
  /** A short name for logs and Cache-Status details: "memory", "redis". */
  readonly name: string
  /** Every stored variant for a primary key, or an empty list. */
  get (key: string): MaybePromise<StoredResponse[]>
  /** The body of a stored response whose `chunks` is null, in order. Fails if the body is gone. */
  body (meta: StoredMeta): AsyncIterable<Buffer>
  /** Starts storing a response of (at most) `size` bytes, or null when the store declines (too large, full). */
  open (key: string, size: number | null): BodyWriter | null
  /** Replaces the head of a stored response (after a 304 revalidation), keeping its body. No-op if it is gone. */
  update (meta: StoredMeta): MaybePromise<void>
  /** Removes every variant stored under `key`; resolves to how many were removed. */
  delete (key: string): MaybePromise<number>
  /** Removes what the filter matches on this store (and, for a shared store, for every instance). */
  purge (filter: PurgeFilter): Promise<number>
  /**
   * Optional: calls `listener` after every purge or delete, so a local layer (the cache's in-flight request
   * collapsing) can drop what it holds for the matched entries. A shared store (Redis) also reports the purges and
   * deletes of every other instance on the same backing storage; its own are reported directly, once, before
   * `purge`/`delete` resolves. Listeners must not throw (a throw is caught and ignored).
   */
  onPurge? (listener: (filter: PurgeFilter) => void): void
  /** Total body bytes held, when the store knows (memory). */
  readonly bytes?: number
  close (): Promise<void>
}
