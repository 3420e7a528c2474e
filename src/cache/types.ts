/**
 * The cache's vocabulary, shared by its rooms (http-cache.ts, fill.ts, serve.ts): the request as the cache sees it,
 * how it sends one upstream, the client it answers, its settings and its counters.
 */
import type { ResponseHandler } from '../upstream/types.js'
import type { HeaderRecord, PolicyOptions } from './policy.js'

/** The settings the cache runs with (the resolved `cache` config). */
export interface CacheSettings extends PolicyOptions {
  maxObjectSize: number
  retainStale: number
  collapseTimeout: number
  name: string
}

/** One client request as the cache sees it. Built by the pipeline. */
export interface CacheRequest {
  method: 'GET' | 'HEAD'
  /** The primary key (key.ts): "GET https://example.com/path?q". */
  key: string
  /** Lower-case host without port, and origin-form target: stored for purges. */
  host: string
  path: string
  /** The request's header fields as the policy sees them (policy.requestRecord). */
  req: HeaderRecord
  /** Upstream request headers as the client would have them forwarded (conditionals and Range kept). */
  upstreamHeaders: string[]
}

/** Sends a request upstream for this exchange's route: `method` with `headers`, no body. */
export type Send = (method: string, headers: string[], handler: ResponseHandler) => void

/** The client's exchange: a ResponseHandler that also carries the Cache-Status of answers it builds itself (errors). */
export interface CacheClient extends ResponseHandler {
  cacheStatus: string | null
  readonly finished: boolean
}

/** Counters, as `GET /cache/stats` reports them. */
export interface CacheStats {
  hits: number
  misses: number
  revalidations: number
  staleServed: number
  stored: number
  collapsed: number
  bypassed: number
  storeErrors: number
  purged: number
}
