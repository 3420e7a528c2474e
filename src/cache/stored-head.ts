/**
 * Building the head the store keeps: for a new response (what is stored and what only the client it was fetched for
 * may see), and for a 304 that freshens a stored one (RFC 9111 §3.2, §4.3.4). Pure.
 */
import { randomBytes } from 'node:crypto'
import { replaceField, withoutFields } from '../http/fields.js'
import type { Candidate } from './lookup.js'
import { Freshness, headerRecord, type HeaderRecord, type PolicyOptions } from './policy.js'
import type { StoredMeta } from './store.js'
import type { CacheRequest } from './types.js'

/** Fields a cache MUST NOT store (RFC 9111 §3.1); they still reach the client the response was fetched for. */
export const NEVER_STORED: readonly string[] = ['proxy-authenticate', 'proxy-authentication-info', 'proxy-authorization']
/** Fields a 304 never replaces in the stored response (RFC 9111 §3.2). */
const KEEP_ON_304 = new Set(['content-length', 'transfer-encoding', 'cache-status'])

/** The lower-case fields of a response that only the client it was fetched for may get. */
export function notShared (f: Freshness): readonly string[] {
  return f.omit.length === 0 ? NEVER_STORED : [...NEVER_STORED, ...f.omit]
}

/**
 * The head to store for a new response (`headers` without hop-by-hop fields, Date added if it had none) that the
 * request selects as `variant`.
 */
export function storedMeta (cr: CacheRequest, variant: string, status: number, headers: readonly string[], rec: HeaderRecord, f: Freshness, retainStale: number): StoredMeta {
  const tags = tagsOf(rec)
  return {
    key: cr.key,
    variant,
    host: cr.host,
    path: cr.path,
    status,
    headers: withoutFields(headers, notShared(f)),
    policy: f.serialize(),
    tags,
    size: 0,
    bodyId: nextBodyId(),
    expires: Date.now() + f.storeFor(retainStale)
  }
}

/**
 * §4.3.4: the stored response freshened by a 304: the 304's fields replace the stored ones (except those a 304
 * cannot change), its Date (or the time it arrived) and Age replace the stored ones, and the body is kept. `retire`
 * is true when the merged head is no longer storable: the entry must go, and `meta` is the old head (to answer with).
 */
export function revalidatedMeta (stale: Candidate, notModifiedHeaders: readonly string[], cr: CacheRequest, settings: PolicyOptions & { retainStale: number }): { meta: StoredMeta, f: Freshness, retire: boolean } {
  const merged = merge304(stale.stored.meta.headers, withoutFields(notModifiedHeaders, NEVER_STORED))
  const has = headerRecord(notModifiedHeaders)
  if (has.date === undefined) replaceField(merged, 'date', new Date().toUTCString())
  if (has.age === undefined) replaceField(merged, 'age', null)
  const rec = headerRecord(merged)
  const judged = Freshness.judge('GET', cr.path, cr.req, stale.stored.meta.status, rec, settings)
  if (!(judged instanceof Freshness)) return { meta: stale.stored.meta, f: stale.f, retire: true }
  const meta = {
    ...stale.stored.meta,
    headers: judged.omit.length === 0 ? merged : withoutFields(merged, judged.omit),
    policy: judged.serialize(),
    tags: tagsOf(rec),
    expires: Date.now() + Math.max(1000, judged.storeFor(settings.retainStale))
  }
  return { meta, f: judged, retire: false }
}

/** §3.2 / §4.3.4: fields of the 304 replace the stored ones of the same name, except those a 304 cannot change. */
export function merge304 (stored: readonly string[], update: readonly string[]): string[] {
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
export function tagsOf (rec: HeaderRecord): string[] {
  const tags = new Set<string>()
  for (const t of (rec['surrogate-key'] ?? '').split(/[\s,]+/)) if (t !== '') tags.add(t)
  for (const t of (rec['cache-tag'] ?? '').split(',')) if (t.trim() !== '') tags.add(t.trim())
  return [...tags]
}

/** Body ids: unique across instances sharing a store (random per process) and cheap per miss (a counter). */
const BODY_ID_PREFIX = randomBytes(8).toString('base64url')
let bodyCounter = 0
function nextBodyId (): string {
  bodyCounter = (bodyCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${BODY_ID_PREFIX}${bodyCounter.toString(36)}`
}
