/**
 * The proxy cache (RFC 9111 shared cache, RFC 5861 stale-*, RFC 9211 Cache-Status, RFC 9213 targeted fields).
 * It sits between the pipeline and the route's upstream: the pipeline hands it GET/HEAD requests of cached routes
 * (`handle`), and wraps unsafe requests with `invalidating` (§4.4).
 *
 * A lookup reads every stored variant of the primary key (method + URI), picks the one whose Vary values match,
 * and lets http-cache-semantics (policy.ts) say fresh / stale-allowed / stale-while-revalidate / revalidate.
 * Misses and revalidations go upstream through a `Fill`: one upstream request per key at a time, every
 * concurrent request for the key joins it (request collapsing) and is streamed the response as it arrives,
 * while the body is written to the store. A Fill whose response turns out not shareable (private, no-store,
 * a different Vary variant) sends its joiners upstream on their own.
 */
import { randomBytes } from 'node:crypto'
import { filterResponseHeaders } from '../upstream/headers.js'
import type { ResponseHandler } from '../upstream/types.js'
import { ProxyError } from '../errors.js'
import type { Logger } from '../observability/logger.js'
import type { BodyWriter, CacheStore, PurgeFilter, StoredMeta, StoredResponse } from './store.js'
import { Delivery, sliceAsync, sliceChunks } from './deliver.js'
import { directives, evaluate, Freshness, headerRecord, httpDate, variantOf, type HeaderRecord, type PolicyOptions, type SerializedPolicy } from './policy.js'

export interface CacheSettings extends PolicyOptions {
  maxObjectSize: number
  retainStale: number
  collapseTimeout: number
  name: string
}

/** One client request as the cache sees it. Built by the pipeline. */
export interface CacheRequest {
  method: 'GET' | 'HEAD'
  /** "GET https://example.com/path?q" */
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

/** Where the cache writes Cache-Status for error responses it did not build itself. */
export interface CacheClient extends ResponseHandler {
  cacheStatus: string | null
  readonly finished: boolean
}

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

/** Request fields that make a conditional or partial request; a fill asks for the full response instead. */
const CONDITIONAL = new Set(['if-none-match', 'if-modified-since', 'range', 'if-range'])
/** Fields a 304 never replaces in the stored response (RFC 9111 §3.2). */
const KEEP_ON_304 = new Set(['content-length', 'transfer-encoding', 'cache-status'])
/** Fields a cache MUST NOT store (RFC 9111 §3.1); they still reach the client the response was fetched for. */
const NEVER_STORED = ['proxy-authenticate', 'proxy-authentication-info', 'proxy-authorization']
/** Fields a 304 answer from the cache carries (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified'])

export class HttpCache {
  readonly store: CacheStore
  readonly settings: CacheSettings
  readonly stats: CacheStats = { hits: 0, misses: 0, revalidations: 0, staleServed: 0, stored: 0, collapsed: 0, bypassed: 0, storeErrors: 0, purged: 0 }
  /** Fields meant for this cache, never sent downstream: targeted fields (RFC 9213), surrogate keys and tags. */
  readonly hidden: string[]
  /** The Surrogate-Capability value sent upstream (`portico="Surrogate/1.0"`), or null when Surrogate-Control is not read. */
  readonly surrogateCapability: string | null
  readonly #logger: Logger
  readonly #fills = new Map<string, Fill>()
  #storeDown = false

  constructor (store: CacheStore, settings: CacheSettings, logger: Logger) {
    this.store = store
    this.settings = settings
    this.#logger = logger
    this.hidden = [...settings.targetedFields, 'surrogate-key', 'cache-tag', 'surrogate-control']
    this.surrogateCapability = settings.targetedFields.includes('surrogate-control')
      ? `${settings.surrogateToken ?? settings.name.toLowerCase()}="Surrogate/1.0"`
      : null
    store.onPurge?.((filter) => this.#forgetFills(filter))
  }

  /** Serves a GET or HEAD request of a cached route: from the store, or through a (shared) fill. */
  handle (client: CacheClient, cr: CacheRequest, send: Send): void {
    const cc = directives(cr.req['cache-control'])
    // Preconditions only an origin can judge: forward as they are.
    if (cr.req['if-match'] !== undefined || cr.req['if-unmodified-since'] !== undefined) {
      this.#passthrough(client, cr, send, 'fwd=request')
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
        this.#storeUp()
        if (!client.finished) this.#decide(client, cr, send, list, cc)
      }, (err: unknown) => {
        if (!client.finished) this.#bypass(client, cr, send, err)
      })
    } else {
      this.#decide(client, cr, send, found, cc)
    }
  }

  /**
   * Wraps the handler of an unsafe request (POST, PUT, DELETE, ...): once it succeeds (2xx/3xx), the target
   * URI and same-origin Location / Content-Location URIs are invalidated (RFC 9111 §4.4).
   */
  invalidating (handler: CacheClient, scheme: string, host: string, path: string): ResponseHandler {
    const base = `${scheme}://${host}`
    return this.marking(handler, 'fwd=method', (status, headers) => {
      if (status < 200 || status >= 400) return
      const keys = new Set([`GET ${base}${path}`])
      for (let i = 0; i < headers.length; i += 2) {
        const n = headers[i].toLowerCase()
        if (n !== 'location' && n !== 'content-location') continue
        let u: URL
        try {
          u = new URL(headers[i + 1], `${base}${path}`)
        } catch {
          continue
        }
        // Same origin only (§4.4): a response must not be able to evict another site's entries.
        if (`${u.protocol}//${u.host}`.toLowerCase() === base) keys.add(`GET ${base}${u.pathname}${u.search}`)
      }
      for (const k of keys) this.#delete(k)
    })
  }

  /**
   * Wraps the handler of a response the cache only passes through: fields meant for the cache are removed and
   * Cache-Status (with `fwd`) added; `seen` gets the final head.
   */
  marking (handler: CacheClient, fwd: string, seen?: (status: number, headers: string[]) => void): ResponseHandler {
    const cacheStatus = this.statusFor(fwd)
    const hidden = this.hidden
    handler.cacheStatus = cacheStatus
    return new Proxying(handler, {
      head (status, headers) {
        const out = withoutFields(headers, hidden)
        out.push('cache-status', `${cacheStatus}; fwd-status=${status}`)
        seen?.(status, out)
        return out
      }
    })
  }

  /** Removes what the filter matches from the store (every instance, for a shared store). */
  async purge (filter: PurgeFilter): Promise<number> {
    this.#forgetFills(filter)
    const n = await this.store.purge(filter)
    this.stats.purged += n
    return n
  }

  async close (): Promise<void> {
    await this.store.close()
  }

  /** The status prefix: `Portico; ` */
  get #name (): string {
    return this.settings.name
  }

  // --- lookup --------------------------------------------------------------------------------------------

  #decide (client: CacheClient, cr: CacheRequest, send: Send, list: StoredResponse[], cc: Map<string, string | true>): void {
    let candidate: { stored: StoredResponse, f: Freshness } | null = null
    let varyMiss = false
    for (const stored of list) {
      let f: Freshness
      try {
        f = restored.get(stored.meta) ?? remember(stored.meta, Freshness.restore(stored.meta.policy as SerializedPolicy))
      } catch {
        continue
      }
      if ((f.vary !== null && f.vary[0] === '*') || stored.meta.variant !== variantOf(f.vary, cr.req)) {
        varyMiss = true
        continue
      }
      candidate = { stored, f }
      break
    }
    const onlyIfCached = cc.has('only-if-cached')
    if (candidate !== null) {
      const v = evaluate(candidate.f, cr.req)
      if (v.use === 'fresh' || v.use === 'stale') {
        this.stats.hits++
        if (v.use === 'stale') this.stats.staleServed++
        this.serveStored(client, cr, candidate.stored, candidate.f, `hit; ttl=${Math.floor(candidate.f.ttl())}`, send)
        return
      }
      if (v.use === 'swr') {
        // RFC 5861 §3: answer with the stale response, refresh it once in the background.
        this.stats.hits++
        this.stats.staleServed++
        this.serveStored(client, cr, candidate.stored, candidate.f, `hit; ttl=${Math.floor(candidate.f.ttl())}; detail=stale-while-revalidate`, send)
        if (!this.#fills.has(cr.key)) this.#startFill(null, cr, send, candidate)
        return
      }
      if (onlyIfCached) {
        this.#notCached(client)
        return
      }
      this.#join(client, cr, send, `fwd=${v.use === 'revalidate' ? v.why : 'stale'}`, candidate)
      return
    }
    if (onlyIfCached) {
      this.#notCached(client)
      return
    }
    const fwd = `fwd=${varyMiss ? 'vary-miss' : 'uri-miss'}`
    // A partial request with nothing stored goes as it is: fetching the whole object for one range could be
    // far more than the client asked for. A HEAD miss likewise.
    if (cr.req.range !== undefined || cr.method === 'HEAD') {
      this.stats.misses++
      this.#passthrough(client, cr, send, fwd)
      return
    }
    this.#join(client, cr, send, fwd, null)
  }

  /** Joins the key's fill in flight (collapsing), or starts one. */
  #join (client: CacheClient, cr: CacheRequest, send: Send, fwd: string, stale: { stored: StoredResponse, f: Freshness } | null): void {
    const fill = this.#fills.get(cr.key)
    if (fill !== undefined && this.settings.collapseTimeout > 0 && fill.accepting) {
      this.stats.collapsed++
      fill.add(new Waiter(client, cr, send, `${fwd}; collapsed`), this.settings.collapseTimeout)
      return
    }
    if (stale !== null) this.stats.revalidations++
    else this.stats.misses++
    if (cr.method === 'HEAD' && stale === null) {
      this.#passthrough(client, cr, send, fwd)
      return
    }
    this.#startFill(new Waiter(client, cr, send, fwd), cr, send, stale)
  }

  #startFill (leader: Waiter | null, cr: CacheRequest, send: Send, stale: { stored: StoredResponse, f: Freshness } | null): void {
    const fill = new Fill(this, cr, stale)
    this.#fills.set(cr.key, fill)
    if (leader !== null) fill.lead(leader)
    const headers = stripConditionals(cr.upstreamHeaders)
    if (stale !== null && stale.f.hasValidator) {
      // §4.3.1: validate with the stored response's own validators (the client's are answered here).
      const etag = headerOf(stale.stored.meta.headers, 'etag')
      const lastModified = headerOf(stale.stored.meta.headers, 'last-modified')
      // Sent back exactly as the origin wrote it, even unquoted (invalid): that origin compares what it sent.
      if (etag !== undefined) headers.push('if-none-match', etag)
      if (lastModified !== undefined) headers.push('if-modified-since', lastModified)
    }
    send('GET', headers, fill)
  }

  /** Forwards the request untouched by the cache, adding Cache-Status. */
  #passthrough (client: CacheClient, cr: CacheRequest, send: Send, fwd: string): void {
    send(cr.method, cr.upstreamHeaders, this.marking(client, fwd))
  }

  #bypass (client: CacheClient, cr: CacheRequest, send: Send, err: unknown): void {
    this.stats.bypassed++
    this.#storeFailed(err)
    this.#passthrough(client, cr, send, 'fwd=bypass; detail=store-unavailable')
  }

  /** RFC 9111 §5.2.1.7: only-if-cached and nothing usable stored → 504. */
  #notCached (client: CacheClient): void {
    this.stats.misses++
    client.cacheStatus = `${this.#name}; fwd=miss; detail=only-if-cached`
    client.onConnect(() => {})
    client.onError(new ProxyError('PORTICO_ERR_NOT_CACHED'))
  }

  // --- serving stored responses --------------------------------------------------------------------------

  /** Answers one client from a stored response: 304 for a matching conditional, 206/416 for a Range, else 200. */
  serveStored (client: CacheClient, cr: CacheRequest, stored: StoredResponse, f: Freshness, status: string, send: Send): void {
    const meta = stored.meta
    const cacheStatus = `${this.#name}; ${status}`
    client.cacheStatus = cacheStatus
    const headers = servedHeaders(meta.headers, f.age(), this.hidden)
    if (notModified(cr.req, meta.headers, cr.method, meta.status)) {
      const d = new Delivery(client)
      if (d.start(304, notModifiedHeaders(headers, cacheStatus))) d.end()
      return
    }
    let range: [number, number] | null | 'unsatisfiable' = null
    if (cr.req.range !== undefined && meta.status === 200 && ifRangeMatches(cr.req['if-range'], meta.headers)) {
      range = parseRange(cr.req.range, meta.size)
    }
    if (range === 'unsatisfiable') {
      const d = new Delivery(client)
      const out = withoutFields(headers, ['content-length'])
      out.push('content-range', `bytes */${meta.size}`, 'content-length', '0', 'cache-status', cacheStatus)
      if (d.start(416, out)) d.end()
      return
    }
    let out: string[]
    let code = meta.status
    if (range !== null) {
      code = 206
      out = withoutFields(headers, ['content-length'])
      out.push('content-range', `bytes ${range[0]}-${range[1]}/${meta.size}`, 'content-length', String(range[1] - range[0] + 1))
    } else {
      out = headers
    }
    out.push('cache-status', cacheStatus)
    const d = new Delivery(client)
    if (stored.chunks !== null) {
      if (!d.start(code, out)) return
      if (cr.method === 'HEAD') d.end()
      else d.sendChunks(range === null ? stored.chunks : sliceChunks(stored.chunks, range[0], range[1]))
      return
    }
    if (cr.method === 'HEAD') {
      if (d.start(code, out)) d.end()
      return
    }
    // A shared store: read the first chunk before committing to the head, so a store failure can still
    // fall back to the upstream.
    const source = (range === null ? this.store.body(meta) : sliceAsync(this.store.body(meta), range[0], range[1]))[Symbol.asyncIterator]()
    source.next().then((first) => {
      if (client.finished) {
        void source.return?.()
        return
      }
      if (!d.start(code, out)) return
      if (first.done === true) d.end()
      else d.sendAsync(source, [first.value])
    }, (err: unknown) => {
      if (!client.finished) this.#bypass(client, cr, send, err)
    })
  }

  // --- store bookkeeping ---------------------------------------------------------------------------------

  /** Opens a writer, or null when the store declines or fails. */
  open (key: string, size: number | null): BodyWriter | null {
    try {
      return this.store.open(key, size)
    } catch (err) {
      this.#storeFailed(err)
      return null
    }
  }

  /** Commits a stored response; resolves (never rejects) once a shared store has it. */
  commit (writer: BodyWriter, meta: StoredMeta): Promise<void> | undefined {
    let r
    try {
      r = writer.commit(meta)
    } catch (err) {
      this.#storeFailed(err)
      return undefined
    }
    this.stats.stored++
    if (r instanceof Promise) return r.then(() => this.#storeUp(), (err: unknown) => this.#storeFailed(err))
    return undefined
  }

  update (meta: StoredMeta): void {
    this.#settle(() => this.store.update(meta))
  }

  #delete (key: string): void {
    // A response in flight for an invalidated URI may predate the change: serve it, do not store it.
    this.#fills.get(key)?.discard()
    this.#settle(() => this.store.delete(key))
  }

  /** Deletes a key from the store (a purge that raced a shared-store write). */
  forget (key: string): void {
    this.#settle(() => this.store.delete(key))
  }

  /** Aborts every upstream request still filling (the proxy is closing, its clients are gone or served). */
  abortFills (): void {
    for (const fill of [...this.#fills.values()]) fill.abort()
  }

  fillDone (fill: Fill): void {
    if (this.#fills.get(fill.key) === fill) this.#fills.delete(fill.key)
  }

  #settle (op: () => unknown): void {
    try {
      const r = op()
      if (r instanceof Promise) r.then(() => this.#storeUp(), (err: unknown) => this.#storeFailed(err))
    } catch (err) {
      this.#storeFailed(err)
    }
  }

  #forgetFills (filter: PurgeFilter): void {
    // An in-flight fill for a purged key must not store what it is fetching as if nothing happened.
    for (const fill of this.#fills.values()) {
      const match = 'key' in filter ? fill.key === filter.key : 'tag' in filter ? fill.tags.includes(filter.tag) : fill.host === filter.host && fill.path.startsWith(filter.pathPrefix)
      if (match) fill.discard()
    }
  }

  #storeFailed (err: unknown): void {
    this.stats.storeErrors++
    if (!this.#storeDown) {
      this.#storeDown = true
      this.#logger.warn({ err, store: this.store.name }, 'cache store unavailable: requests bypass the cache until it is back')
    }
  }

  #storeUp (): void {
    if (this.#storeDown) {
      this.#storeDown = false
      this.#logger.info({ store: this.store.name }, 'cache store available again')
    }
  }

  statusFor (fwd: string): string {
    return `${this.#name}; ${fwd}`
  }

}

/**
 * Freshness objects of stored heads, so a memory-store hit does not rebuild the policy each time. A head is never
 * changed in place (a 304 update makes a new one), so the cached object stays right.
 */
const restored = new WeakMap<StoredMeta, Freshness>()
function remember (meta: StoredMeta, f: Freshness): Freshness {
  restored.set(meta, f)
  return f
}

/** Body ids: unique across instances sharing a store (random per process) and cheap per miss (a counter). */
const BODY_ID_PREFIX = randomBytes(8).toString('base64url')
let bodyCounter = 0
function nextBodyId (): string {
  bodyCounter = (bodyCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${BODY_ID_PREFIX}${bodyCounter.toString(36)}`
}

/** A client waiting on a fill. */
class Waiter {
  readonly client: CacheClient
  readonly cr: CacheRequest
  readonly send: Send
  readonly fwd: string
  timer: NodeJS.Timeout | null = null
  delivery: Delivery | null = null
  /** Index of the next chunk to send. */
  pos = 0
  done = false

  constructor (client: CacheClient, cr: CacheRequest, send: Send, fwd: string) {
    this.client = client
    this.cr = cr
    this.send = send
    this.fwd = fwd
  }
}

type FillState = 'pending' | 'shared' | 'private' | 'done'

/**
 * One upstream request filling (or revalidating) a key, and the clients waiting on it. It is the upstream's
 * ResponseHandler. 'shared': the response is stored and every waiter reads from the chunk list at its own pace
 * (the upstream is never paused for a slow client: the list is bounded by maxObjectSize). 'private': not
 * shareable; the first waiter alone gets it, with backpressure, and the others go upstream themselves.
 */
class Fill implements ResponseHandler {
  readonly key: string
  readonly host: string
  readonly path: string
  readonly #cache: HttpCache
  readonly #cr: CacheRequest
  readonly #stale: { stored: StoredResponse, f: Freshness } | null
  #waiters: Waiter[] = []
  /** The client whose request was sent (null for a background refresh). */
  #leader: Waiter | null = null
  #state: FillState = 'pending'
  /** New clients may still join (until the head shows whether it is shareable). */
  accepting = true
  tags: string[] = []
  #chunks: Buffer[] = []
  /** Chunks already dropped from the front of #chunks (after an overflow); waiter positions are absolute. */
  #base = 0
  #overflow = false
  #bytes = 0
  #complete = false
  #failed: Error | null = null
  #writer: BodyWriter | null = null
  #meta: StoredMeta | null = null
  #declaredLength: number | null = null
  #abortUpstream: ((reason?: Error) => void) | null = null
  #resumeUpstream: (() => void) | null = null
  #status = 0
  #headers: string[] = []
  #fwdStatus = ''
  #freshness: Freshness | null = null
  #discarded = false
  /** The upstream is paused waiting for the slowest waiter (after an overflow). */
  #upstreamPaused = false
  /** Fields of the response that only the leader may get (lower-case). */
  #notShared: string[] = NEVER_STORED

  constructor (cache: HttpCache, cr: CacheRequest, stale: { stored: StoredResponse, f: Freshness } | null) {
    this.#cache = cache
    this.#cr = cr
    this.key = cr.key
    this.host = cr.host
    this.path = cr.path
    this.#stale = stale
  }

  /** Adds the client whose request this fill sends. */
  lead (w: Waiter): void {
    this.#leader = w
    this.#waiters.push(w)
  }

  add (w: Waiter, timeout: number): void {
    // Joined after the head: start at once from the first chunk (the body may still be arriving), if this
    // response is the variant the request selects.
    if (this.#meta !== null && (this.#state === 'shared' || this.#complete)) {
      if (variantOf(this.#freshness!.vary, w.cr.req) !== this.#meta.variant) {
        goAlone(this.#cache, w, `${w.fwd.replace('; collapsed', '')}; detail=vary`)
        return
      }
      this.#waiters.push(w)
      this.#startWaiter(w)
      return
    }
    this.#waiters.push(w)
    if (timeout > 0) {
      w.timer = setTimeout(() => {
        // The leader's response head is late: go upstream alone rather than wait any longer.
        if (this.#state !== 'pending' || w.done) return
        this.#remove(w)
        goAlone(this.#cache, w, `${w.fwd.replace('; collapsed', '')}; detail=collapse-timeout`)
      }, timeout)
      w.timer.unref?.()
    }
  }

  /**
   * A purge or invalidation hit this key mid-fill: finish serving the waiters but store nothing. If the body is
   * already being committed (a shared store), the key is deleted again once that write has landed.
   */
  discard (): void {
    this.accepting = false
    this.#discarded = true
    this.#writer?.abort()
    this.#writer = null
  }

  /** Stops the upstream request (proxy closing). */
  abort (): void {
    this.#abortUpstream?.(new ProxyError('PORTICO_ERR_SHUTTING_DOWN'))
  }

  // --- ResponseHandler (upstream side) ------------------------------------------------------------------

  onAttempt (upstreamId: string): void {
    for (const w of this.#waiters) (w.client as Partial<{ onAttempt (id: string): void }>).onAttempt?.(upstreamId)
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#abortUpstream = abort
  }

  onHeaders (status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) {
      // Interim responses go to the leader only (its request is the one that was sent).
      const leader = this.#leader
      if (leader !== null && !leader.done) leader.client.onHeaders(status, rawHeaders, resume, statusText)
      return true
    }
    this.#resumeUpstream = resume
    this.#status = status
    this.#fwdStatus = `fwd-status=${status}`
    const cache = this.#cache
    const settings = cache.settings
    const headers = filterResponseHeaders(rawHeaders)
    const stale = this.#stale

    if (stale !== null && status === 304) {
      this.#revalidated(headers)
      return true
    }
    if (stale !== null && status >= 500 && stale.f.staleIfErrorAllowed(this.#cr.req)) {
      this.#serveStale(`fwd=stale; fwd-status=${status}; detail=stale-if-error`)
      this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED', 'stale-if-error answered'))
      return false
    }

    const rec = headerRecord(headers)
    const cr = this.#cr
    const judged = Freshness.judge('GET', cr.path, cr.req, status, rec, settings)
    const cl = rec['content-length']
    this.#declaredLength = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : null
    // RFC 9110 §6.6.1: a response cached without Date gets the time it was received.
    if (rec.date === undefined) headers.push('date', new Date().toUTCString())
    this.#headers = withoutFields(headers, cache.hidden)

    let notStored: string | null = typeof judged === 'string' ? judged : null
    // Neither fresh, nor servable stale, nor revalidatable: nothing to keep it for.
    if (notStored === null && (judged as Freshness).storeFor(settings.retainStale) <= 0) notStored = 'no-freshness'
    if (notStored === null && this.#declaredLength !== null && this.#declaredLength > settings.maxObjectSize) notStored = 'too-large'
    if (notStored === null && !this.accepting) notStored = 'purged'
    if (notStored === null) {
      this.#writer = cache.open(cr.key, this.#declaredLength)
      if (this.#writer === null) notStored = 'store-declined'
    }
    if (stale !== null && status < 400) {
      // A new response replaces the stored one (§4.3.3); if it cannot be stored, the old one must go.
      if (notStored !== null) cache.update({ ...stale.stored.meta, expires: 0 })
    }

    if (notStored !== null || judged instanceof Freshness === false) {
      this.#private(`detail=${notStored ?? 'not-storable'}`)
      return true
    }
    const f = judged as Freshness
    this.#freshness = f
    this.#notShared = f.omit.length === 0 ? NEVER_STORED : [...NEVER_STORED, ...f.omit]
    this.tags = tagsOf(rec)
    const variant = variantOf(f.vary, cr.req)
    this.#meta = {
      key: cr.key,
      variant,
      host: cr.host,
      path: cr.path,
      status,
      headers: withoutFields(headers, this.#notShared),
      policy: f.serialize(),
      tags: this.tags,
      size: 0,
      bodyId: nextBodyId(),
      expires: Date.now() + f.storeFor(settings.retainStale)
    }
    this.#state = 'shared'
    this.accepting = true
    // Waiters whose Vary values differ cannot use this response.
    for (const w of this.#waiters.slice()) {
      if (w !== this.#leader && variantOf(f.vary, w.cr.req) !== variant) {
        this.#remove(w)
        goAlone(cache, w, `${w.fwd.replace('; collapsed', '')}; detail=vary`)
      }
    }
    for (const w of this.#waiters) this.#startWaiter(w)
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#state === 'shared') {
      this.#bytes += chunk.length
      this.#chunks.push(chunk)
      if (this.#writer !== null) this.#writer.write(chunk)
      if (!this.#overflow && this.#bytes > this.#cache.settings.maxObjectSize) {
        // Larger than any object we keep (a body of unknown length): stop storing, take no new waiters, and keep
        // only what the current waiters have not had yet, at the pace of the slowest.
        this.#overflow = true
        this.#writer?.abort()
        this.#writer = null
        this.accepting = false
        this.#cache.fillDone(this)
      }
      for (const w of this.#waiters) this.#pump(w)
      if (!this.#overflow) return true
      this.#trim()
      return this.#paceUpstream()
    }
    if (this.#state === 'private') {
      const d = this.#leader?.delivery ?? null
      if (d === null || d.aborted) {
        this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
        return false
      }
      if (d.push(chunk)) return true
      if (d.aborted) this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
      else d.whenResumed(() => this.#resumeUpstream?.())
      return false
    }
    return true
  }

  onComplete (rawTrailers: Buffer[] | string[] | null): void {
    const state = this.#state
    this.#state = 'done'
    this.#complete = true
    if (state !== 'shared') this.#cache.fillDone(this)
    if (state === 'private') {
      const d = this.#leader?.delivery ?? null
      if (d !== null && !d.aborted) d.handler.onComplete(rawTrailers)
      return
    }
    if (state !== 'shared') return
    const writer = this.#writer
    this.#writer = null
    // Never store a body that was cut short (§3.3): the declared length must have arrived in full.
    let committed: Promise<void> | undefined
    if (writer !== null && this.#meta !== null) {
      if (this.#declaredLength !== null && this.#declaredLength !== this.#bytes) writer.abort()
      else committed = this.#cache.commit(writer, { ...this.#meta, size: this.#bytes })
    }
    for (const w of this.#waiters) this.#pump(w)
    // Until a shared store has the response, requests for the key are served from this fill's chunks (a
    // client may ask again before the store write lands).
    if (committed === undefined || !this.accepting) this.#cache.fillDone(this)
    else {
      void committed.then(() => {
        this.#cache.fillDone(this)
        if (this.#discarded) this.#cache.forget(this.key)
      })
    }
  }

  onError (err: Error): void {
    const state = this.#state
    if (state === 'done') return
    this.#state = 'done'
    this.#failed = err
    this.#cache.fillDone(this)
    this.#writer?.abort()
    this.#writer = null
    const stale = this.#stale
    if (state === 'pending' && stale !== null && stale.f.staleIfErrorAllowed(this.#cr.req) && !(err instanceof ProxyError && err.code === 'PORTICO_ERR_CLIENT_ABORTED')) {
      this.#serveStale('fwd=stale; detail=stale-if-error')
      return
    }
    for (const w of this.#waiters) {
      if (w.done) continue
      w.done = true
      if (w.timer !== null) clearTimeout(w.timer)
      if (w.delivery !== null) w.delivery.fail(err)
      else {
        w.client.cacheStatus = this.#cache.statusFor(w.fwd)
        w.client.onConnect(() => {})
        w.client.onError(err)
      }
    }
  }

  // --- internals -----------------------------------------------------------------------------------------

  /** §4.3.4: a 304 freshens the stored response: its fields replace the stored ones, the body is kept. */
  #revalidated (notModifiedHeaders: string[]): void {
    const stale = this.#stale!
    const cache = this.#cache
    const merged = merge304(stale.stored.meta.headers, withoutFields(notModifiedHeaders, NEVER_STORED))
    // The 304 is the new response: its Date (or the time it arrived) and its Age replace the stored ones.
    const has = headerRecord(notModifiedHeaders)
    if (has.date === undefined) replaceField(merged, 'date', new Date().toUTCString())
    if (has.age === undefined) replaceField(merged, 'age', null)
    const judged = Freshness.judge('GET', this.#cr.path, this.#cr.req, stale.stored.meta.status, headerRecord(merged), cache.settings)
    let f = stale.f
    let meta = stale.stored.meta
    if (judged instanceof Freshness) {
      f = judged
      meta = { ...meta, headers: f.omit.length === 0 ? merged : withoutFields(merged, f.omit), policy: f.serialize(), tags: tagsOf(headerRecord(merged)), expires: Date.now() + Math.max(1000, f.storeFor(cache.settings.retainStale)) }
      cache.update(meta)
    } else {
      cache.update({ ...meta, expires: 0 })
    }
    this.#state = 'done'
    cache.fillDone(this)
    const stored = { meta, chunks: stale.stored.chunks }
    for (const w of this.#waiters) this.#serveFromStore(w, stored, f, `${w.fwd}; fwd-status=304`)
    this.#waiters = []
  }

  /** RFC 5861 §4: the upstream failed; answer every waiter with the stale response. */
  #serveStale (status: string): void {
    const stale = this.#stale!
    this.#state = 'done'
    this.#cache.fillDone(this)
    this.#cache.stats.staleServed++
    for (const w of this.#waiters) this.#serveFromStore(w, stale.stored, stale.f, status)
    this.#waiters = []
  }

  #serveFromStore (w: Waiter, stored: StoredResponse, f: Freshness, status: string): void {
    if (w.done) return
    w.done = true
    if (w.timer !== null) clearTimeout(w.timer)
    const send = w.send
    // Reuses the cache's stored-response path: conditionals, Range and HEAD for each waiter.
    this.#cache.serveStored(w.client, w.cr, stored, f, status, send)
  }

  /**
   * Not shareable: the leader (whose request was sent, credentials and all) gets the response alone; the others
   * go upstream themselves. A background refresh has no leader: nobody gets it.
   */
  #private (detail: string): void {
    this.#state = 'private'
    this.accepting = false
    this.#cache.fillDone(this)
    const first = this.#leader
    for (const w of this.#waiters) {
      if (w === first) continue
      this.#removeTimer(w)
      goAlone(this.#cache, w, `${w.fwd.replace('; collapsed', '')}; ${detail}`)
    }
    this.#waiters = first === null ? [] : [first]
    if (first === null || first.done) {
      this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
      return
    }
    this.#removeTimer(first)
    const status = this.#cache.statusFor(`${first.fwd}; ${this.#fwdStatus}; ${detail}`)
    first.client.cacheStatus = status
    // The fill asked for the full response; the client may have asked conditionally.
    const headers = this.#headers.slice()
    if (notModified(first.cr.req, headers, first.cr.method, this.#status)) {
      first.delivery = new Delivery(first.client, () => this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED')))
      if (first.delivery.start(304, notModifiedHeaders(headers, status))) first.delivery.end()
      first.done = true
      this.#waiters = []
      this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED', 'answered 304'))
      return
    }
    headers.push('cache-status', status)
    first.delivery = new Delivery(first.client, () => this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED')))
    if (!first.delivery.start(this.#status, headers)) return
    if (first.cr.method === 'HEAD') {
      first.done = true
      first.delivery.end()
      this.#waiters = []
      this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED', 'HEAD answered'))
    }
  }

  #startWaiter (w: Waiter): void {
    if (w.done) return
    this.#removeTimer(w)
    const f = this.#freshness!
    const stored = this.#writer !== null || this.#meta !== null
    const status = this.#cache.statusFor(`${w.fwd}; ${this.#fwdStatus}${stored ? `; stored; ttl=${Math.floor(f.ttl())}` : ''}`)
    w.client.cacheStatus = status
    w.delivery = new Delivery(w.client, () => this.#remove(w))
    if (notModified(w.cr.req, this.#headers, w.cr.method, this.#status)) {
      w.done = true
      if (w.delivery.start(304, notModifiedHeaders(this.#headers, status))) w.delivery.end()
      return
    }
    // The leader gets the head it asked for; everyone else gets what the store keeps (no proxy-auth fields,
    // nothing a qualified private/no-cache names), with its current age.
    const headers = this.#stale !== null || w !== this.#leader ? servedHeaders(this.#headers, f.age(), this.#notShared) : this.#headers.slice()
    headers.push('cache-status', status)
    if (!w.delivery.start(this.#status, headers)) {
      this.#remove(w)
      return
    }
    if (w.cr.method === 'HEAD') {
      w.done = true
      w.delivery.end()
      return
    }
    this.#pump(w)
  }

  /** Sends a shared waiter what it has not had yet; ends it when the fill is complete. */
  #pump (w: Waiter): void {
    const d = w.delivery
    if (w.done || d === null || d.paused) return
    while (w.pos < this.#base + this.#chunks.length) {
      if (!d.push(this.#chunks[w.pos++ - this.#base])) {
        if (d.aborted) {
          w.done = true
          return
        }
        d.whenResumed(() => this.#pump(w))
        return
      }
    }
    if (this.#complete) {
      w.done = true
      d.end()
    } else if (this.#failed !== null) {
      w.done = true
      d.fail(this.#failed)
    }
  }

  /**
   * After an overflow the upstream goes at the pace of the slowest waiter: paused while one is paused, resumed
   * when none is, aborted when nobody is left to read. Returns what onData should return.
   */
  #paceUpstream (): boolean {
    const active = this.#waiters.filter((w) => !w.done)
    if (active.length === 0) {
      this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED', 'nobody reads an unstorable body'))
      return false
    }
    const slow = active.find((w) => w.delivery !== null && w.delivery.paused)
    if (slow === undefined) {
      if (this.#upstreamPaused) {
        this.#upstreamPaused = false
        this.#resumeUpstream?.()
      }
      return true
    }
    this.#upstreamPaused = true
    slow.delivery!.whenResumed(() => {
      if (this.#state === 'shared') this.#paceUpstream()
    })
    return false
  }

  /** Drops the chunks every active waiter has already been sent. */
  #trim (): void {
    let min = this.#base + this.#chunks.length
    for (const w of this.#waiters) if (!w.done && w.pos < min) min = w.pos
    const n = min - this.#base
    if (n > 0) {
      this.#chunks.splice(0, n)
      this.#base = min
    }
  }

  #remove (w: Waiter): void {
    this.#removeTimer(w)
    w.done = true
    const i = this.#waiters.indexOf(w)
    if (i !== -1) this.#waiters.splice(i, 1)
    if (this.#state === 'shared' && this.#overflow) {
      // A waiter that paused the upstream may be the one leaving.
      this.#trim()
      this.#paceUpstream()
      return
    }
    // Nobody left on a response that is not being stored: stop fetching it.
    if (!this.#waiters.some((x) => !x.done) && this.#writer === null && this.#state !== 'done' && this.#state !== 'pending') {
      this.#abortUpstream?.(new ProxyError('PORTICO_ERR_CLIENT_ABORTED'))
    }
  }

  #removeTimer (w: Waiter): void {
    if (w.timer !== null) {
      clearTimeout(w.timer)
      w.timer = null
    }
  }
}

/** A waiter that cannot use the fill's response: it forwards its own request, untouched by the cache. */
function goAlone (cache: HttpCache, w: Waiter, fwd: string): void {
  w.done = true
  if (w.client.finished) return
  w.send(w.cr.method, w.cr.upstreamHeaders, cache.marking(w.client, fwd))
}

/** A ResponseHandler that passes everything through, letting `head` edit the final response head. */
class Proxying implements ResponseHandler {
  readonly #inner: ResponseHandler
  readonly #edit: { head: (status: number, headers: string[]) => string[] }

  constructor (inner: ResponseHandler, edit: { head: (status: number, headers: string[]) => string[] }) {
    this.#inner = inner
    this.#edit = edit
  }

  onAttempt (id: string): void {
    (this.#inner as Partial<{ onAttempt (id: string): void }>).onAttempt?.(id)
  }

  onConnect (abort: (reason?: Error) => void): void {
    this.#inner.onConnect(abort)
  }

  onHeaders (status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) return this.#inner.onHeaders(status, rawHeaders, resume, statusText)
    const headers = this.#edit.head(status, filterResponseHeaders(rawHeaders))
    return this.#inner.onHeaders(status, headers as unknown as Buffer[], resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    return this.#inner.onData(chunk)
  }

  onComplete (trailers: Buffer[] | string[] | null): void {
    this.#inner.onComplete(trailers)
  }

  onError (err: Error): void {
    this.#inner.onError(err)
  }
}

// --- header helpers --------------------------------------------------------------------------------------

function headerOf (flat: string[], lower: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i].toLowerCase() === lower) return flat[i + 1]
  return undefined
}

function withoutFields (flat: string[], lowerNames: string[]): string[] {
  if (lowerNames.length === 0) return flat.slice()
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) {
    if (!lowerNames.includes(flat[i].toLowerCase())) out.push(flat[i], flat[i + 1])
  }
  return out
}

/** A stored head as sent downstream: fields meant for the cache removed, the current Age (§5.1) in place of any stored one. */
function servedHeaders (flat: string[], age: number, hidden: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) {
    const n = flat[i].toLowerCase()
    if (n !== 'age' && !hidden.includes(n)) out.push(flat[i], flat[i + 1])
  }
  out.push('age', String(age))
  return out
}

/** Replaces every `name` field of a flat list with one value (null: removes them). */
function replaceField (flat: string[], lower: string, value: string | null): void {
  for (let i = flat.length - 2; i >= 0; i -= 2) if (flat[i].toLowerCase() === lower) flat.splice(i, 2)
  if (value !== null) flat.push(lower, value)
}

function stripConditionals (flat: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) if (!CONDITIONAL.has(flat[i].toLowerCase())) out.push(flat[i], flat[i + 1])
  return out
}

/** §3.2 / §4.3.4: fields of the 304 replace the stored ones of the same name, except those a 304 cannot change. */
function merge304 (stored: string[], update: string[]): string[] {
  const replaced = new Set<string>()
  for (let i = 0; i < update.length; i += 2) {
    const n = update[i].toLowerCase()
    if (!KEEP_ON_304.has(n)) replaced.add(n)
  }
  const out: string[] = []
  for (let i = 0; i < stored.length; i += 2) if (!replaced.has(stored[i].toLowerCase())) out.push(stored[i], stored[i + 1])
  for (let i = 0; i < update.length; i += 2) if (replaced.has(update[i].toLowerCase())) out.push(update[i], update[i + 1])
  return out
}

/** Surrogate keys (Surrogate-Key: space-separated) and cache tags (Cache-Tag: comma-separated). */
function tagsOf (rec: HeaderRecord): string[] {
  const tags = new Set<string>()
  for (const t of (rec['surrogate-key'] ?? '').split(/[\s,]+/)) if (t !== '') tags.add(t)
  for (const t of (rec['cache-tag'] ?? '').split(',')) if (t.trim() !== '') tags.add(t.trim())
  return [...tags]
}

/** RFC 9110 §8.8.3.2 weak comparison; an unquoted tag (a common origin mistake) compares as if quoted. */
function weakEqual (a: string, b: string): boolean {
  return opaqueTag(a) === opaqueTag(b)
}

function opaqueTag (t: string): string {
  const v = t.trim().replace(/^W\//, '')
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v
}

/**
 * RFC 9110 §13.1.2/§13.1.3 for a GET/HEAD answered by the cache: If-None-Match (weak comparison, "*" matches
 * any), else If-Modified-Since against Last-Modified.
 */
function notModified (req: HeaderRecord, stored: string[], method: string, status: number): boolean {
  // RFC 9110 §13.2.1: preconditions apply only where the unconditional answer would be 2xx.
  if ((method !== 'GET' && method !== 'HEAD') || status < 200 || status >= 300) return false
  const inm = req['if-none-match']
  if (inm !== undefined) {
    const etag = headerOf(stored, 'etag')
    if (inm.trim() === '*') return true
    if (etag === undefined) return false
    return inm.split(',').some((t) => weakEqual(t.trim(), etag.trim()))
  }
  const ims = req['if-modified-since']
  if (ims !== undefined) {
    // RFC 9111 §4.3.2: the stored response's Last-Modified, else its Date (a stored head always has one).
    const since = httpDate(ims)
    const modified = httpDate(headerOf(stored, 'last-modified') ?? headerOf(stored, 'date'))
    return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since
  }
  return false
}

function notModifiedHeaders (headers: string[], cacheStatus: string): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i].toLowerCase()
    if (NOT_MODIFIED_FIELDS.has(n) || n === 'age') out.push(headers[i], headers[i + 1])
  }
  out.push('cache-status', cacheStatus)
  return out
}

/** RFC 9110 §13.1.5: If-Range with a strong ETag, or a date equal to Last-Modified. No If-Range: true. */
function ifRangeMatches (ifRange: string | undefined, stored: string[]): boolean {
  if (ifRange === undefined) return true
  const v = ifRange.trim()
  if (v.startsWith('"')) {
    const etag = headerOf(stored, 'etag')
    return etag !== undefined && etag.trim() === v
  }
  if (v.startsWith('W/')) return false
  const lm = headerOf(stored, 'last-modified')
  if (lm === undefined) return false
  const since = httpDate(v)
  return !Number.isNaN(since) && httpDate(lm) === since
}

/**
 * RFC 9110 §14.1.2: one byte range of a `size`-byte body. Null when the field is not a single bytes range
 * (then the whole response is sent, which §14.2 allows); 'unsatisfiable' → 416.
 */
export function parseRange (value: string, size: number): [number, number] | null | 'unsatisfiable' {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value)
  if (m === null || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0) return 'unsatisfiable'
    return [Math.max(0, size - n), size - 1]
  }
  const start = Number(m[1])
  if (start >= size) return 'unsatisfiable'
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (end < start) return null
  return [start, end]
}

