/**
 * A fill: one upstream request fetching (or revalidating) a key, and the clients waiting on it — request collapsing.
 * It is the upstream's ResponseHandler and talks to the rest of the cache only through `FillHost`.
 *
 * States, one at a time:
 * - `head`: the request is out, no response head yet; clients may join (each bounded by collapseTimeout).
 * - `shared`: the response is being stored; every waiter reads the chunk list at its own pace (the upstream is never
 *   paused for a slow client: the list is bounded by maxObjectSize); clients may still join.
 * - `overflow`: a body of unknown length grew past maxObjectSize: nothing is stored, nobody joins, and the upstream
 *   goes at the pace of the slowest waiter (aborted when nobody reads any more).
 * - `private`: the response is not shareable: the leader (whose request was sent) alone gets it, with backpressure;
 *   the others go upstream on their own.
 * - `committing`: the body is complete and a shared store is still writing it; joiners are served from the chunks.
 * - `done`: answered, failed or stopped; nothing more happens.
 * Orthogonal to the state: `discarded` (a purge or invalidation hit the key: serve, store nothing).
 */
import { ProxyError } from '../errors.js'
import { fieldValue, withoutFields } from '../http/fields.js'
import { filterResponseHeaders } from '../upstream/headers.js'
import type { ResponseHandler } from '../upstream/types.js'
import { CacheStatus, type Detail } from './cache-status.js'
import { Delivery } from './deliver.js'
import { ChunkFeed } from './chunk-feed.js'
import type { Waiter } from './waiter.js'
import type { Candidate } from './lookup.js'
import { Freshness, headerRecord } from './policy.js'
import { variantOf } from './vary.js'
import { notModified, notModifiedHeaders, servedHeaders } from './serve.js'
import { NEVER_STORED, notShared, revalidatedMeta, storedMeta } from './stored-head.js'
import type { StoreGuard } from './store-guard.js'
import type { BodyWriter, StoredMeta, StoredResponse } from './store.js'
import type { CacheRequest, CacheSettings, CacheStats, Send } from './types.js'

/** What a fill needs from the cache. */
export interface FillHost {
  readonly settings: CacheSettings
  readonly stats: CacheStats
  /** Fields meant for the cache, never sent downstream. */
  readonly hidden: readonly string[]
  readonly store: StoreGuard
  /** The fill takes no more joiners: its key is free for the next fill. */
  release (fill: Fill): void
  /** Answers a waiter from a stored response. */
  serve (w: Waiter, stored: StoredResponse, f: Freshness, status: CacheStatus): void
  /** Sends a waiter's own request upstream, untouched by the cache, with `status` (fwd-status is added). */
  alone (w: Waiter, status: CacheStatus): void
}

/** Request fields that make a conditional or partial request; a fill asks for the full response instead. */
const CONDITIONAL = new Set(['if-none-match', 'if-modified-since', 'range', 'if-range'])

type FillState = 'head' | 'shared' | 'overflow' | 'private' | 'committing' | 'done'

export class Fill implements ResponseHandler {
  readonly key: string
  readonly host: string
  readonly path: string
  /** Surrogate keys and cache tags of the response (for purges by tag), once its head arrived. */
  tags: string[] = []
  readonly #host: FillHost
  readonly #cr: CacheRequest
  readonly #stale: Candidate | null
  #state: FillState = 'head'
  #discarded = false
  #waiters: Waiter[] = []
  /** The client whose request was sent (null for a background refresh). */
  #leader: Waiter | null = null
  /** The body as the shared waiters read it. */
  readonly #feed = new ChunkFeed()
  #writer: BodyWriter | null = null
  #meta: StoredMeta | null = null
  #declaredLength: number | null = null
  #abortUpstream: ((reason?: Error) => void) | null = null
  #resumeUpstream: (() => void) | null = null
  #status = 0
  #headers: string[] = []
  #freshness: Freshness | null = null
  /** The upstream is paused waiting for the slowest waiter (overflow). */
  #upstreamPaused = false
  /** Fields of the response that only the leader may get (lower-case). */
  #notShared: readonly string[] = NEVER_STORED

  constructor (host: FillHost, cr: CacheRequest, stale: Candidate | null) {
    this.#host = host
    this.#cr = cr
    this.key = cr.key
    this.host = cr.host
    this.path = cr.path
    this.#stale = stale
  }

  /** New clients may join: the response may still be shareable, and no purge hit it. */
  get accepting (): boolean {
    return !this.#discarded && (this.#state === 'head' || this.#state === 'shared' || this.#state === 'committing')
  }

  /**
   * Sends the fill's request with `leader` as the client it was made for (null for a background refresh): the full
   * response, validated with the stored response's own validators when revalidating (RFC 9111 §4.3.1).
   */
  start (leader: Waiter | null, send: Send): void {
    if (leader !== null) {
      this.#leader = leader
      this.#waiters.push(leader)
    }
    const headers: string[] = []
    const flat = this.#cr.upstreamHeaders
    for (let i = 0; i < flat.length; i += 2) if (!CONDITIONAL.has(flat[i].toLowerCase())) headers.push(flat[i], flat[i + 1])
    const stale = this.#stale
    if (stale !== null && stale.f.hasValidator) {
      // Sent back exactly as the origin wrote it, even unquoted (invalid): that origin compares what it sent.
      const etag = fieldValue(stale.stored.meta.headers, 'etag')
      const lastModified = fieldValue(stale.stored.meta.headers, 'last-modified')
      if (etag !== undefined) headers.push('if-none-match', etag)
      if (lastModified !== undefined) headers.push('if-modified-since', lastModified)
    }
    send('GET', headers, this)
  }

  /** A client joins (collapsing). Call only while `accepting`. */
  add (w: Waiter, timeout: number): void {
    // Joined after the head: start at once from the first chunk (the body may still be arriving), if this
    // response is the variant the request selects.
    if (this.#state === 'shared' || this.#state === 'committing') {
      if (variantOf(this.#freshness!.vary, w.cr.req) !== this.#meta!.variant) {
        this.#host.alone(w, w.fwd.detail('vary'))
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
        if (this.#state !== 'head' || w.done) return
        this.#remove(w)
        this.#host.alone(w, w.fwd.detail('collapse-timeout'))
      }, timeout)
      w.timer.unref?.()
    }
  }

  /**
   * A purge or invalidation hit this key mid-fill: finish serving the waiters but store nothing. If the body is
   * already being committed (a shared store), the key is deleted again once that write has landed.
   */
  discard (): void {
    this.#discarded = true
    this.#writer?.abort()
    this.#writer = null
  }

  /** Fails the upstream request (the proxy is closing). */
  abort (): void {
    this.#abortUpstream?.(new ProxyError('PORTICO_ERR_SHUTTING_DOWN'))
  }

  // --- ResponseHandler (upstream side) ------------------------------------------------------------------

  onAttempt (upstreamId: string): void {
    for (const w of this.#waiters) w.client.onAttempt?.(upstreamId)
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
    const host = this.#host
    const settings = host.settings
    const headers = filterResponseHeaders(rawHeaders)
    const stale = this.#stale

    if (stale !== null && status === 304) {
      this.#revalidated(headers)
      return true
    }
    if (stale !== null && status >= 500 && stale.f.staleIfErrorAllowed(this.#cr.req)) {
      this.#serveStale(CacheStatus.forward(settings.name, 'stale').fwdStatus(status).detail('stale-if-error'))
      this.#stop()
      return false
    }

    const rec = headerRecord(headers)
    const cr = this.#cr
    const judged = Freshness.judge('GET', cr.path, cr.req, status, rec, settings)
    const cl = rec['content-length']
    this.#declaredLength = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : null
    // RFC 9110 §6.6.1: a response cached without Date gets the time it was received.
    if (rec.date === undefined) headers.push('date', new Date().toUTCString())
    this.#headers = withoutFields(headers, host.hidden)

    let notStored: Detail | null = typeof judged === 'string' ? judged : null
    // Neither fresh, nor servable stale, nor revalidatable: nothing to keep it for.
    if (notStored === null && (judged as Freshness).storeFor(settings.retainStale) <= 0) notStored = 'no-freshness'
    if (notStored === null && this.#declaredLength !== null && this.#declaredLength > settings.maxObjectSize) notStored = 'too-large'
    if (notStored === null && this.#discarded) notStored = 'purged'
    if (notStored === null) {
      this.#writer = host.store.open(cr.key, this.#declaredLength)
      if (this.#writer === null) notStored = 'store-declined'
    }
    // A new response replaces the stored one (§4.3.3); if it cannot be stored, the old one must go.
    if (stale !== null && status < 400 && notStored !== null) host.store.update({ ...stale.stored.meta, expires: 0 })

    if (notStored !== null || !(judged instanceof Freshness)) {
      this.#private(notStored ?? 'not-storable')
      return true
    }
    const f = judged
    this.#freshness = f
    this.#notShared = notShared(f)
    const variant = variantOf(f.vary, cr.req)
    this.#meta = storedMeta(cr, variant, status, headers, rec, f, settings.retainStale)
    this.tags = this.#meta.tags
    this.#state = 'shared'
    // Waiters whose Vary values differ cannot use this response.
    for (const w of this.#waiters.slice()) {
      if (w !== this.#leader && variantOf(f.vary, w.cr.req) !== variant) {
        this.#remove(w)
        host.alone(w, w.fwd.detail('vary'))
      }
    }
    for (const w of this.#waiters) this.#startWaiter(w)
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#state === 'shared' || this.#state === 'overflow') {
      this.#feed.push(chunk)
      this.#writer?.write(chunk)
      if (this.#state === 'shared' && this.#feed.bytes > this.#host.settings.maxObjectSize) {
        // Larger than any object we keep (a body of unknown length): stop storing, take no new waiters, and keep
        // only what the current waiters have not had yet, at the pace of the slowest.
        this.#state = 'overflow'
        this.#writer?.abort()
        this.#writer = null
        this.#host.release(this)
      }
      for (const w of this.#waiters) this.#feed.pump(w)
      if (this.#state === 'shared') return true
      this.#feed.trim(this.#waiters)
      return this.#paceUpstream()
    }
    if (this.#state === 'private') {
      const d = this.#leader?.delivery ?? null
      if (d === null || d.aborted) {
        this.#stop()
        return false
      }
      if (d.push(chunk)) return true
      if (d.aborted) this.#stop()
      else d.whenResumed(() => this.#resumeUpstream?.())
      return false
    }
    return true
  }

  onComplete (rawTrailers: Buffer[] | string[] | null): void {
    const state = this.#state
    if (state === 'private') {
      this.#state = 'done'
      const d = this.#leader?.delivery ?? null
      if (d !== null && !d.aborted) d.handler.onComplete(rawTrailers)
      return
    }
    if (state !== 'shared' && state !== 'overflow') {
      this.#state = 'done'
      return
    }
    this.#feed.complete()
    const writer = this.#writer
    this.#writer = null
    // Never store a body that was cut short (§3.3): the declared length must have arrived in full.
    let committed: Promise<void> | undefined
    if (writer !== null && this.#meta !== null) {
      if (this.#declaredLength !== null && this.#declaredLength !== this.#feed.bytes) writer.abort()
      else committed = this.#host.store.commit(writer, { ...this.#meta, size: this.#feed.bytes })
    }
    // Until a shared store has the response, requests for the key are served from this fill's chunks (a client may
    // ask again before the store write lands).
    this.#state = committed !== undefined && this.accepting ? 'committing' : 'done'
    for (const w of this.#waiters) this.#feed.pump(w)
    if (this.#state === 'done') {
      this.#host.release(this)
      return
    }
    void committed!.then(() => {
      this.#state = 'done'
      this.#host.release(this)
      if (this.#discarded) this.#host.store.delete(this.key)
    })
  }

  onError (err: Error): void {
    const state = this.#state
    if (state === 'done' || state === 'committing') return
    this.#state = 'done'
    this.#feed.fail(err)
    this.#host.release(this)
    this.#writer?.abort()
    this.#writer = null
    const stale = this.#stale
    if (state === 'head' && stale !== null && stale.f.staleIfErrorAllowed(this.#cr.req)) {
      this.#serveStale(CacheStatus.forward(this.#host.settings.name, 'stale').detail('stale-if-error'))
      return
    }
    for (const w of this.#waiters) {
      if (w.done) continue
      w.done = true
      this.#removeTimer(w)
      if (w.delivery !== null) w.delivery.fail(err)
      else {
        w.client.cacheStatus = w.status.text
        w.client.onConnect(() => {})
        w.client.onError(err)
      }
    }
  }

  // --- internals -----------------------------------------------------------------------------------------

  /** Ends the fill and cancels the upstream request: the fill answered, or nobody reads its response any more. */
  #stop (): void {
    if (this.#state !== 'done') {
      this.#state = 'done'
      this.#host.release(this)
      this.#writer?.abort()
      this.#writer = null
    }
    this.#abortUpstream?.()
  }

  /** §4.3.4: a 304 freshens the stored response: its fields replace the stored ones, the body is kept. */
  #revalidated (notModifiedHeaders: string[]): void {
    const stale = this.#stale!
    const host = this.#host
    const { meta, f, retire } = revalidatedMeta(stale, notModifiedHeaders, this.#cr, host.settings)
    host.store.update(retire ? { ...meta, expires: 0 } : meta)
    this.#state = 'done'
    host.release(this)
    const stored = { meta, chunks: stale.stored.chunks }
    for (const w of this.#waiters) this.#serveFromStore(w, stored, f, w.status.fwdStatus(304))
    this.#waiters = []
  }

  /** RFC 5861 §4: the upstream failed; answer every waiter with the stale response. */
  #serveStale (status: CacheStatus): void {
    const stale = this.#stale!
    this.#state = 'done'
    this.#host.release(this)
    this.#host.stats.staleServed++
    for (const w of this.#waiters) this.#serveFromStore(w, stale.stored, stale.f, status)
    this.#waiters = []
  }

  #serveFromStore (w: Waiter, stored: StoredResponse, f: Freshness, status: CacheStatus): void {
    if (w.done) return
    w.done = true
    this.#removeTimer(w)
    // The cache's stored-response path: conditionals, Range and HEAD for each waiter.
    this.#host.serve(w, stored, f, status)
  }

  /**
   * Not shareable: the leader (whose request was sent, credentials and all) gets the response alone; the others
   * go upstream themselves. A background refresh has no leader: nobody gets it.
   */
  #private (detail: Detail): void {
    this.#state = 'private'
    this.#host.release(this)
    const first = this.#leader
    for (const w of this.#waiters) {
      if (w === first) continue
      this.#removeTimer(w)
      w.done = true
      this.#host.alone(w, w.fwd.detail(detail))
    }
    this.#waiters = first === null ? [] : [first]
    if (first === null || first.done) {
      this.#stop()
      return
    }
    this.#removeTimer(first)
    const status = first.status.fwdStatus(this.#status).detail(detail).text
    first.client.cacheStatus = status
    first.delivery = new Delivery(first.client, () => this.#stop())
    // The fill asked for the full response; the client may have asked conditionally.
    const headers = this.#headers.slice()
    if (notModified(first.cr.req, headers, first.cr.method, this.#status)) {
      first.done = true
      this.#waiters = []
      if (first.delivery.start(304, notModifiedHeaders(headers, status))) first.delivery.end()
      this.#stop()
      return
    }
    headers.push('cache-status', status)
    if (!first.delivery.start(this.#status, headers)) return
    if (first.cr.method === 'HEAD') {
      first.done = true
      first.delivery.end()
      this.#waiters = []
      this.#stop()
    }
  }

  #startWaiter (w: Waiter): void {
    if (w.done) return
    this.#removeTimer(w)
    const f = this.#freshness!
    let s = w.status.fwdStatus(this.#status)
    if (this.#writer !== null || this.#meta !== null) s = s.stored(f.ttl())
    const status = s.text
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
    this.#feed.pump(w)
  }

  /**
   * In overflow the upstream goes at the pace of the slowest waiter: paused while one is paused, resumed when none
   * is, stopped when nobody is left to read. Returns what onData should return.
   */
  #paceUpstream (): boolean {
    const active = this.#waiters.filter((w) => !w.done)
    if (active.length === 0) {
      this.#stop()
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
      if (this.#state === 'overflow') this.#paceUpstream()
    })
    return false
  }

  #remove (w: Waiter): void {
    this.#removeTimer(w)
    w.done = true
    const i = this.#waiters.indexOf(w)
    if (i !== -1) this.#waiters.splice(i, 1)
    if (this.#state === 'overflow') {
      // A waiter that paused the upstream may be the one leaving.
      this.#feed.trim(this.#waiters)
      this.#paceUpstream()
      return
    }
    // Nobody left on a response that is not being stored: stop fetching it.
    if (!this.#waiters.some((x) => !x.done) && this.#writer === null && (this.#state === 'shared' || this.#state === 'private')) {
      this.#stop()
    }
  }

  #removeTimer (w: Waiter): void {
    if (w.timer !== null) {
      clearTimeout(w.timer)
      w.timer = null
    }
  }
}
