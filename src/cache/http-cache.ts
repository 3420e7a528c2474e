/**
 * The proxy cache (RFC 9111 shared cache, RFC 5861 stale-*, RFC 9211 Cache-Status, RFC 9213 targeted fields): the
 * façade the pipeline talks to. It sits between the pipeline and a route's upstream: GET/HEAD requests of cached
 * routes come to `handle`, unsafe ones are wrapped by `invalidating` (§4.4), others by `marking`.
 *
 * Its rooms: key.ts (the key), lookup.ts (the pure lookup decision), serve.ts (answering from a stored response),
 * fill.ts (one upstream request per key, with every concurrent request for it joined), cache-status.ts, policy.ts
 * (RFC 9111 on http-cache-semantics), store-guard.ts and the stores. This file only wires them together.
 */
import type { Logger } from '../observability/logger.js'
import { ProxyError } from '../errors.js'
import { filterResponseHeaders } from '../upstream/headers.js'
import { ForwardingHandler } from '../upstream/forwarding-handler.js'
import type { ResponseHandler } from '../upstream/types.js'
import { withoutFields } from '../http/fields.js'
import { CacheStatus, type FwdReason } from './cache-status.js'
import { Fill, type FillHost } from './fill.js'
import { Waiter } from './waiter.js'
import { cacheKey, urlKey } from './key.js'
import { lookup, passesThrough, type Candidate } from './lookup.js'
import { directives } from './directives.js'
import type { Freshness } from './policy.js'
import { serveStored } from './serve.js'
import { StoreGuard } from './store-guard.js'
import type { CacheStore, PurgeFilter, StoredResponse } from './store.js'
import type { CacheClient, CacheRequest, CacheSettings, CacheStats, Send } from './types.js'

export type { CacheClient, CacheRequest, CacheSettings, CacheStats, Send } from './types.js'

export class HttpCache {
  readonly store: CacheStore
  readonly settings: CacheSettings
  readonly stats: CacheStats = { hits: 0, misses: 0, revalidations: 0, staleServed: 0, stored: 0, collapsed: 0, bypassed: 0, storeErrors: 0, purged: 0 }
  /** Fields meant for this cache, never sent downstream: targeted fields (RFC 9213), surrogate keys and tags. */
  readonly hidden: readonly string[]
  /** The Surrogate-Capability value sent upstream (`portico="Surrogate/1.0"`), or null when Surrogate-Control is not read. */
  readonly surrogateCapability: string | null
  readonly #guard: StoreGuard
  readonly #fills = new Map<string, Fill>()
  readonly #host: FillHost

  constructor (store: CacheStore, settings: CacheSettings, logger: Logger) {
    this.store = store
    this.settings = settings
    this.#guard = new StoreGuard(store, this.stats, logger)
    this.hidden = [...settings.targetedFields, 'surrogate-key', 'cache-tag', 'surrogate-control']
    this.surrogateCapability = settings.targetedFields.includes('surrogate-control')
      ? `${settings.surrogateToken ?? settings.name.toLowerCase()}="Surrogate/1.0"`
      : null
    this.#host = {
      settings,
      stats: this.stats,
      hidden: this.hidden,
      store: this.#guard,
      release: (fill) => {
        if (this.#fills.get(fill.key) === fill) this.#fills.delete(fill.key)
      },
      serve: (w, stored, f, status) => this.#serve(w.client, w.cr, stored, f, status, w.send),
      alone: (w, status) => {
        w.done = true
        if (!w.client.finished) w.send(w.cr.method, w.cr.upstreamHeaders, this.#marking(w.client, status))
      }
    }
    store.onPurge?.((filter) => this.#forgetFills(filter))
  }

  /** Serves a GET or HEAD request of a cached route: from the store, or through a (shared) fill. */
  handle (client: CacheClient, cr: CacheRequest, send: Send): void {
    if (passesThrough(cr.req)) {
      this.#passthrough(client, cr, send, 'request')
      return
    }
    let found
    try {
      found = this.store.get(cr.key)
    } catch (err) {
      this.#bypass(client, cr, send, err)
      return
    }
    if (found instanceof Promise) {
      found.then((list) => {
        this.#guard.up()
        if (!client.finished) this.#decide(client, cr, send, list)
      }, (err: unknown) => {
        if (!client.finished) this.#bypass(client, cr, send, err)
      })
    } else {
      this.#decide(client, cr, send, found)
    }
  }

  /**
   * Wraps the handler of an unsafe request (POST, PUT, DELETE, ...): once it succeeds (2xx/3xx), the target URI and
   * same-origin Location / Content-Location URIs are invalidated (RFC 9111 §4.4).
   */
  invalidating (handler: CacheClient, scheme: string, host: string, path: string): ResponseHandler {
    const target = `${scheme}://${host}${path}`
    return this.#marking(handler, CacheStatus.forward(this.settings.name, 'method'), (status, headers) => {
      if (status < 200 || status >= 400) return
      const keys = new Set([cacheKey(scheme, host, path)])
      for (let i = 0; i < headers.length; i += 2) {
        const n = headers[i].toLowerCase()
        if (n !== 'location' && n !== 'content-location') continue
        const k = urlKey(headers[i + 1], target)
        // Same origin only (§4.4): a response must not be able to evict another site's entries.
        if (k !== null && k.host === host && k.key.startsWith(`GET ${scheme}:`)) keys.add(k.key)
      }
      for (const k of keys) {
        // A response in flight for an invalidated URI may predate the change: serve it, do not store it.
        this.#fills.get(k)?.discard()
        this.#guard.delete(k)
      }
    })
  }

  /** Wraps the handler of a response the cache only passes through (`fwd` says why), adding Cache-Status. */
  marking (handler: CacheClient, fwd: FwdReason): ResponseHandler {
    return this.#marking(handler, CacheStatus.forward(this.settings.name, fwd))
  }

  /** Removes what the filter matches from the store (every instance, for a shared store). */
  async purge (filter: PurgeFilter): Promise<number> {
    this.#forgetFills(filter)
    const n = await this.store.purge(filter)
    this.stats.purged += n
    return n
  }

  /** Aborts every upstream request still filling (the proxy is closing, its clients are gone or served). */
  abortFills (): void {
    for (const fill of [...this.#fills.values()]) fill.abort()
  }

  async close (): Promise<void> {
    await this.store.close()
  }

  // --- lookup --------------------------------------------------------------------------------------------

  #decide (client: CacheClient, cr: CacheRequest, send: Send, list: StoredResponse[]): void {
    const name = this.settings.name
    const d = lookup(cr.method, cr.req, list, directives(cr.req['cache-control']).has('only-if-cached'))
    switch (d.kind) {
      case 'fresh':
        this.stats.hits++
        if (d.stale) this.stats.staleServed++
        this.#serve(client, cr, d.candidate.stored, d.candidate.f, CacheStatus.hit(name, d.candidate.f.ttl()), send)
        return
      case 'stale-while-revalidate':
        // RFC 5861 §3: answer with the stale response, refresh it once in the background.
        this.stats.hits++
        this.stats.staleServed++
        this.#serve(client, cr, d.candidate.stored, d.candidate.f, CacheStatus.hit(name, d.candidate.f.ttl()).detail('stale-while-revalidate'), send)
        if (!this.#fills.has(cr.key)) this.#startFill(null, cr, send, d.candidate)
        return
      case 'revalidate':
        this.#join(client, cr, send, d.fwd, d.candidate)
        return
      case 'miss':
        this.#join(client, cr, send, d.fwd, null)
        return
      case 'pass':
        this.stats.misses++
        this.#passthrough(client, cr, send, d.fwd)
        return
      case 'not-cached':
        // RFC 9111 §5.2.1.7: only-if-cached and nothing usable stored → 504.
        this.stats.misses++
        client.cacheStatus = CacheStatus.forward(name, 'miss').detail('only-if-cached').text
        client.onConnect(() => {})
        client.onError(new ProxyError('PORTICO_ERR_NOT_CACHED'))
    }
  }

  /** Joins the key's fill in flight (collapsing), or starts one. */
  #join (client: CacheClient, cr: CacheRequest, send: Send, fwd: FwdReason, stale: Candidate | null): void {
    const status = CacheStatus.forward(this.settings.name, fwd)
    const fill = this.#fills.get(cr.key)
    if (fill !== undefined && this.settings.collapseTimeout > 0 && fill.accepting) {
      this.stats.collapsed++
      fill.add(new Waiter(client, cr, send, status, true), this.settings.collapseTimeout)
      return
    }
    if (stale !== null) this.stats.revalidations++
    else this.stats.misses++
    this.#startFill(new Waiter(client, cr, send, status, false), cr, send, stale)
  }

  #startFill (leader: Waiter | null, cr: CacheRequest, send: Send, stale: Candidate | null): void {
    const fill = new Fill(this.#host, cr, stale)
    this.#fills.set(cr.key, fill)
    fill.start(leader, send)
  }

  #serve (client: CacheClient, cr: CacheRequest, stored: StoredResponse, f: Freshness, status: CacheStatus, send: Send): void {
    serveStored(client, cr, stored, f, status, this.hidden, this.store, (err) => this.#bypass(client, cr, send, err))
  }

  /** Forwards the request untouched by the cache, adding Cache-Status. */
  #passthrough (client: CacheClient, cr: CacheRequest, send: Send, fwd: FwdReason): void {
    send(cr.method, cr.upstreamHeaders, this.marking(client, fwd))
  }

  /** The store failed: forward the request as if the route did not cache. */
  #bypass (client: CacheClient, cr: CacheRequest, send: Send, err: unknown): void {
    this.stats.bypassed++
    this.#guard.failed(err)
    send(cr.method, cr.upstreamHeaders, this.#marking(client, CacheStatus.forward(this.settings.name, 'bypass').detail('store-unavailable')))
  }

  #marking (handler: CacheClient, status: CacheStatus, seen?: (status: number, headers: string[]) => void): ResponseHandler {
    handler.cacheStatus = status.text
    return new MarkingHandler(handler, status, this.hidden, seen)
  }

  #forgetFills (filter: PurgeFilter): void {
    // An in-flight fill for a purged key must not store what it is fetching as if nothing happened.
    for (const fill of this.#fills.values()) {
      const match = 'key' in filter ? fill.key === filter.key : 'tag' in filter ? fill.tags.includes(filter.tag) : fill.host === filter.host && fill.path.startsWith(filter.pathPrefix)
      if (match) fill.discard()
    }
  }
}

/**
 * The handler of a response the cache passes through: fields meant for the cache are removed and Cache-Status (with
 * the response's fwd-status) added; `seen` gets the final head.
 */
class MarkingHandler extends ForwardingHandler {
  readonly #status: CacheStatus
  readonly #hidden: readonly string[]
  readonly #seen: ((status: number, headers: string[]) => void) | undefined

  constructor (inner: ResponseHandler, status: CacheStatus, hidden: readonly string[], seen?: (status: number, headers: string[]) => void) {
    super(inner)
    this.#status = status
    this.#hidden = hidden
    this.#seen = seen
  }

  override onHeaders (status: number, rawHeaders: Buffer[] | string[], resume: () => void, statusText: string): boolean {
    if (status < 200) return this.inner.onHeaders(status, rawHeaders, resume, statusText)
    const headers = withoutFields(filterResponseHeaders(rawHeaders), this.#hidden)
    headers.push('cache-status', this.#status.fwdStatus(status).text)
    this.#seen?.(status, headers)
    return this.inner.onHeaders(status, headers, resume, statusText)
  }
}
