/**
 * RFC 9111 decisions for one stored response, on top of http-cache-semantics (which does the Cache-Control
 * freshness arithmetic: storable(), age(), maxAge(), timeToLive()). Only the library's public API is used. This
 * module feeds it clean input (directives.ts reads Cache-Control and targeted fields, vary.ts the request, and
 * http/date.ts dates) and corrects the places where a shared proxy cache must behave differently from the
 * library's defaults:
 *
 * - targeted fields (RFC 9213): `CDN-Cache-Control` replaces Cache-Control and Expires for Portico;
 * - `must-understand` (§5.2.2.3): no-store is ignored for statuses we understand, kept for the others;
 * - duplicated directives keep their first occurrence (§4.2.1), directive names are case-insensitive (§5.2),
 *   qualified `no-cache="f"` / `private="f"` keep only the named fields out of the store (§5.2.2.4/.7);
 * - an invalid or list-valued `Age` keeps its first valid member or is ignored (§5.1);
 * - `must-revalidate` / `proxy-revalidate` (§5.2.2.2, §5.2.2.8): the library treats the first as "never fresh"
 *   and the second as "max-age 0"; here both allow fresh reuse and forbid serving stale (we check that ourselves);
 * - request directives (§5.2.1) and stale-while-revalidate / stale-if-error (RFC 5861) are judged here (`evaluate`);
 * - responses with Set-Cookie are never stored (a shared cache would hand one user's cookie to another).
 *
 * Pure: no I/O, `now` comes from the library (Date.now()).
 */
import CachePolicy from 'http-cache-semantics'
import { fieldRecord } from '../http/fields.js'
import { httpDate, imfFixdate } from '../http/date.js'
import { directives, formatDirectives, targeted } from './directives.js'
import { varyNames } from './vary.js'

export type HeaderRecord = Record<string, string>

/** A head's fields as the policy reads them: lower-case names, repeated fields joined (RFC 9110 §5.3). */
export const headerRecord: (flat: readonly string[]) => HeaderRecord = fieldRecord

/** Statuses the cache understands (http-cache-semantics' list): `must-understand` lets these be stored. */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501])

/** §5.1: the first member of a list-valued Age, if it is a non-negative integer; otherwise no Age. */
function cleanAge (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const first = value.split(',')[0].trim()
  return /^\d+$/.test(first) ? first : undefined
}

export interface PolicyOptions {
  heuristicFraction: number
  /** This cache's Surrogate-Capability device token: Surrogate-Control directives targeted at it apply. */
  surrogateToken?: string
  /** Lower-case targeted field names (RFC 9213), in order of precedence. */
  targetedFields: string[]
}

/** What the cache keeps with a stored response: the library's state plus the corrections above. */
export interface SerializedPolicy {
  p: object
  /** must-revalidate or proxy-revalidate: never serve stale. */
  mr: boolean
  /** stale-if-error seconds (0 = none). */
  sie: number
  /** stale-while-revalidate seconds (0 = none); absent in entries stored before it was kept here. */
  swr?: number
  /** The response has a validator (ETag or Last-Modified); absent in entries stored before it was kept here. */
  val?: boolean
  /** Vary names (null: none; ['*']: never matches). */
  vary: string[] | null
  /** Lower-case fields never stored or served from the cache (qualified no-cache / private). */
  om?: string[]
}

/** Options for every CachePolicy: shared, our heuristic fraction, and no default life for `immutable` alone. */
function POLICY_OPTIONS (opts: PolicyOptions): CachePolicy.Options {
  return { shared: true, cacheHeuristic: opts.heuristicFraction, immutableMinTimeToLive: 0 }
}

export type NotStorableReason = 'method' | 'status' | 'no-store' | 'private' | 'authorization' | 'set-cookie' | 'vary-star' | 'no-freshness'

/** A stored (or about to be stored) response's freshness and validation state. */
export class Freshness {
  readonly policy: CachePolicy
  readonly mustRevalidate: boolean
  readonly staleIfError: number
  /** RFC 5861 §3: seconds past freshness during which a stale answer may be given while refreshing. */
  readonly staleWhileRevalidate: number
  readonly vary: string[] | null
  /** Fields named by a qualified no-cache="…" or private="…": kept out of the store (§5.2.2.4, §5.2.2.7). */
  readonly omit: string[]
  /** The response has a validator: a stale copy can be revalidated with a conditional request. */
  readonly hasValidator: boolean

  private constructor (policy: CachePolicy, mr: boolean, sie: number, swr: number, vary: string[] | null, omit: string[], validator: boolean) {
    this.policy = policy
    this.mustRevalidate = mr
    this.staleIfError = sie
    this.staleWhileRevalidate = swr
    this.vary = vary
    this.omit = omit
    this.hasValidator = validator
  }

  /**
   * Judges a response to `req`. Returns the freshness state, or why a shared cache must not store it.
   * `res` is the response's header record; targeted fields are consumed here.
   */
  static judge (method: string, url: string, req: HeaderRecord, status: number, res: HeaderRecord, opts: PolicyOptions): Freshness | NotStorableReason {
    if (method !== 'GET') return 'method'
    const h: HeaderRecord = { ...res }
    // RFC 9213 §2.2: the first targeted field present (and parseable) replaces Cache-Control and Expires.
    for (const t of opts.targetedFields) {
      const v = h[t]
      const cc = v === undefined ? null : targeted(t, v, opts.surrogateToken)
      if (cc !== null) {
        if (cc === '') delete h['cache-control']
        else h['cache-control'] = cc
        delete h.expires
        delete h.pragma
        break
      }
    }
    for (const t of opts.targetedFields) delete h[t]
    // §5.4: Pragma has no cache semantics in RFC 9111 (the library would read a response Pragma: no-cache).
    delete h.pragma
    // RFC 9110 §5.6.7 dates, checked strictly: an invalid Expires means already expired (§5.3), an invalid Date or
    // Last-Modified is ignored.
    if (h.expires !== undefined) h.expires = imfFixdate(h.expires) ?? 'Thu, 01 Jan 1970 00:00:00 GMT'
    for (const f of ['date', 'last-modified']) {
      const d = imfFixdate(h[f])
      if (d === undefined) delete h[f]
      else h[f] = d
    }
    const cc = directives(h['cache-control'])
    // §5.2.2.3: must-understand overrides no-store for statuses whose caching rules we implement.
    if (cc.has('must-understand')) {
      if (UNDERSTOOD.has(status)) cc.delete('no-store')
      else return 'status'
    }
    // §5.2.2.4 / §5.2.2.7: a qualified no-cache="a, b" or private="a, b" restricts only the fields it names. The
    // cache keeps those fields out of what it stores (so every reuse is without them, as if revalidated away),
    // and the rest of the response is treated as if the directive were absent.
    const omit: string[] = []
    for (const d of ['no-cache', 'private']) {
      const v = cc.get(d)
      if (typeof v !== 'string') continue
      const names = v.split(',').map((n) => n.trim().toLowerCase()).filter((n) => /^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n))
      if (names.length === 0) {
        cc.set(d, true)
      } else {
        omit.push(...names)
        cc.delete(d)
      }
    }
    // The policy judges the response as it will be stored: without those fields.
    for (const n of omit) delete h[n]
    // s-maxage implies proxy-revalidate for a shared cache (§5.2.2.10).
    // ... and no-cache forbids serving it stale without validation too (§4.2.4): no stale-while-revalidate or
    // stale-if-error answer for it.
    const mr = cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('s-maxage') || cc.has('no-cache')
    const sie = Number(cc.get('stale-if-error') ?? 0) || 0
    const swr = Number(cc.get('stale-while-revalidate') ?? 0) || 0
    // §4.2.3: the initial age is the larger of the Age value and the apparent age (now − Date); the library
    // only counts Age, so the apparent age is folded into the Age it sees.
    let age = cleanAge(h.age)
    const date = httpDate(h.date)
    if (!Number.isNaN(date)) {
      // Date has one-second resolution: a response dated 12:00:00 may have been made at 12:00:00.999.
      const apparent = Math.floor((Date.now() - date - 999) / 1000)
      if (apparent > 0 && apparent > Number(age ?? 0)) age = String(apparent)
    }
    if (age === undefined) delete h.age
    else h.age = age

    // Storability is judged on the response as sent: must-revalidate also lets a shared cache store an
    // answer to an authenticated request (§3.5).
    h['cache-control'] = formatDirectives(cc)
    if (h['cache-control'] === '') delete h['cache-control']
    const vary = varyNames(h)
    // §3: any final status may be stored when the response says how long (explicit freshness or public); only
    // must-understand (above) ties storing to the statuses we understand. The library stores only the statuses
    // it knows, so such a response is judged as a 200 with the same fields (with `public` and no explicit
    // lifetime that means heuristic freshness from Last-Modified, which §4.2.2 allows for `public` responses).
    const explicit = cc.has('max-age') || cc.has('s-maxage') || h.expires !== undefined || cc.has('public')
    const libStatus = UNDERSTOOD.has(status) || status === 206 || status === 304 || !explicit ? status : 200
    const judged = new CachePolicy({ method, url, headers: req }, { status: libStatus, headers: h }, POLICY_OPTIONS(opts))
    if (!judged.storable()) return reason(method, status, cc, req)
    if (h['set-cookie'] !== undefined) return 'set-cookie'
    if (vary !== null && vary[0] === '*') return 'vary-star'

    // Freshness is computed without must-/proxy-revalidate (handled by `mustRevalidate`), and without the
    // Authorization header once storing was allowed.
    if (mr) {
      cc.delete('must-revalidate')
      cc.delete('proxy-revalidate')
      h['cache-control'] = formatDirectives(cc)
      if (h['cache-control'] === '') delete h['cache-control']
    }
    // The stored policy keeps the request fields it is given when the response varies (to match later requests
    // against): give it only what Vary names, never the leader's Cookie, Authorization or API keys wholesale.
    // The Authorization header itself no longer matters once storing was allowed.
    const minimal = vary !== null || req.authorization !== undefined
    let policyReq = req
    if (minimal) {
      policyReq = { host: req.host }
      if (req['cache-control'] !== undefined) policyReq['cache-control'] = req['cache-control']
      for (const n of vary ?? []) if (req[n] !== undefined) policyReq[n] = req[n]
    }
    const policy = mr || minimal
      ? new CachePolicy({ method, url, headers: policyReq }, { status: libStatus, headers: h }, POLICY_OPTIONS(opts))
      : judged
    return new Freshness(policy, mr, sie, swr, vary, omit, h.etag !== undefined || h['last-modified'] !== undefined)
  }

  static restore (s: SerializedPolicy): Freshness {
    const p = s.p as CachePolicy.CachePolicyObject
    // Entries stored by an older Portico lack swr/val: read them from the library's documented serialized form.
    const swr = s.swr ?? (Number(p.rescc?.['stale-while-revalidate'] ?? 0) || 0)
    const validator = s.val ?? (p.resh?.etag !== undefined || p.resh?.['last-modified'] !== undefined)
    return new Freshness(CachePolicy.fromObject(p), s.mr, s.sie, swr, s.vary, s.om ?? [], validator)
  }

  serialize (): SerializedPolicy {
    const s: SerializedPolicy = { p: this.policy.toObject(), mr: this.mustRevalidate, sie: this.staleIfError, swr: this.staleWhileRevalidate, val: this.hasValidator, vary: this.vary }
    if (this.omit.length > 0) s.om = this.omit
    return s
  }

  /** Seconds of freshness left (negative once stale). */
  ttl (): number {
    return this.policy.maxAge() - this.policy.age()
  }

  /** Current age in whole seconds (the Age header we send). */
  age (): number {
    return Math.max(0, Math.floor(this.policy.age()))
  }

  /** Whether a stale-if-error answer is allowed now (RFC 5861 §4), never with must-/proxy-revalidate. */
  staleIfErrorAllowed (req?: HeaderRecord): boolean {
    if (this.mustRevalidate) return false
    // RFC 5861 §4: the directive may come from the response or from the request (the client accepts it).
    const fromRequest = req === undefined ? 0 : Number(directives(req['cache-control']).get('stale-if-error') ?? 0) || 0
    const window = Math.max(this.staleIfError, fromRequest)
    return window > 0 && this.ttl() + window > 0
  }

  /** Milliseconds the store should keep the response: usable life, plus `retain` when it can be revalidated. */
  storeFor (retain: number): number {
    const usable = this.policy.timeToLive()
    return usable + (this.hasValidator ? retain : 0)
  }
}

function reason (method: string, status: number, cc: Map<string, string | true>, req: HeaderRecord): NotStorableReason {
  if (method !== 'GET') return 'method'
  if (cc.has('no-store') || directives(req['cache-control']).has('no-store')) return 'no-store'
  if (cc.has('private')) return 'private'
  if (req.authorization !== undefined) return 'authorization'
  if (!UNDERSTOOD.has(status)) return 'status'
  return 'no-freshness'
}

/**
 * How a stored response answers a request (§4 and §4.2.4): 'fresh' reuse, 'stale' reuse allowed (max-stale),
 * 'swr' (serve stale, refresh in the background, RFC 5861 §3), or 'revalidate' (must ask the origin first).
 * `why` tells Cache-Status why a usable response was not reused ('request' when the request forbade it).
 */
export type Verdict = { use: 'fresh' | 'stale' | 'swr' } | { use: 'revalidate', why: 'stale' | 'request' }

/**
 * Judges a stored response (already matched to the request by key and Vary) against the request's directives.
 * `req` is the request record (`requestRecord`), whose Cache-Control is already normalised.
 */
export function evaluate (f: Freshness, req: HeaderRecord): Verdict {
  const p = f.policy
  const cc = directives(req['cache-control'])
  const age = p.age()
  const lifetime = p.maxAge()
  const stale = lifetime <= age
  // §5.2.1.4 no-cache, §5.2.1.1 max-age, §5.2.1.3 min-fresh: the request asks for something fresher.
  if (cc.has('no-cache') ||
    (cc.has('max-age') && age > Number(cc.get('max-age'))) ||
    (cc.has('min-fresh') && lifetime - age < Number(cc.get('min-fresh')))) {
    return { use: 'revalidate', why: stale ? 'stale' : 'request' }
  }
  if (!stale) return { use: 'fresh' }
  // §5.2.1.2: max-stale lets a stale response through, but never a must-revalidate one (§5.2.2.2).
  const maxStale = cc.get('max-stale')
  if (maxStale !== undefined && (maxStale === true || Number(maxStale) > age - lifetime)) {
    return f.mustRevalidate ? { use: 'revalidate', why: 'stale' } : { use: 'stale' }
  }
  // RFC 5861 §3: within the stale-while-revalidate window, answer stale and refresh in the background.
  if (!f.mustRevalidate && f.staleWhileRevalidate > 0 && lifetime + f.staleWhileRevalidate > age) return { use: 'swr' }
  return { use: 'revalidate', why: 'stale' }
}
