/**
 * The lookup decision: given a request and every response stored under its key, what the cache does. Pure (the
 * stored heads come in, a decision comes out; no store, no sockets), so every branch is unit-tested on its own.
 *
 * - `pass`: forward the request as it is, storing nothing (preconditions only the origin can judge; a Range or
 *   HEAD request with nothing usable stored);
 * - `fresh`: answer from the stored response (fresh, or stale as the request allowed with max-stale);
 * - `stale-while-revalidate`: answer from the stale response and refresh it in the background (RFC 5861 §3);
 * - `revalidate`: ask the origin with the stored validators before answering (or send a new request when it has
 *   none), then answer;
 * - `miss`: nothing usable stored: fetch, store and answer;
 * - `not-cached`: the request said only-if-cached and nothing usable is stored (RFC 9111 §5.2.1.7: 504).
 */
import type { FwdReason } from './cache-status.js'
import { evaluate, Freshness, type HeaderRecord, type SerializedPolicy } from './policy.js'
import { variantOf } from './vary.js'
import type { StoredMeta, StoredResponse } from './store.js'

/** A stored response chosen for a request, with its freshness state. */
export interface Candidate {
  stored: StoredResponse
  f: Freshness
}

export type Decision =
  | { kind: 'pass', fwd: FwdReason }
  | { kind: 'fresh', candidate: Candidate, stale: boolean }
  | { kind: 'stale-while-revalidate', candidate: Candidate }
  | { kind: 'revalidate', candidate: Candidate, fwd: 'stale' | 'request' }
  | { kind: 'miss', fwd: 'uri-miss' | 'vary-miss' }
  | { kind: 'not-cached' }

/** Preconditions only an origin can judge (RFC 9110 §13.1.1, §13.1.4): such a request is never looked up. */
export function passesThrough (req: HeaderRecord): boolean {
  return req['if-match'] !== undefined || req['if-unmodified-since'] !== undefined
}

/** The decision for a GET or HEAD request (`req` is its record, `policy.requestRecord`) against the stored variants. */
export function lookup (method: 'GET' | 'HEAD', req: HeaderRecord, list: readonly StoredResponse[], onlyIfCached: boolean): Decision {
  let candidate: Candidate | null = null
  let varyMiss = false
  for (const stored of list) {
    let f: Freshness
    try {
      f = restored.get(stored.meta) ?? remember(stored.meta, Freshness.restore(stored.meta.policy as SerializedPolicy))
    } catch {
      continue
    }
    // RFC 9111 §4.1: the stored variant must match the request's values of the fields Vary names; Vary: * never does.
    if ((f.vary !== null && f.vary[0] === '*') || stored.meta.variant !== variantOf(f.vary, req)) {
      varyMiss = true
      continue
    }
    candidate = { stored, f }
    break
  }
  if (candidate !== null) {
    const v = evaluate(candidate.f, req)
    if (v.use === 'fresh' || v.use === 'stale') return { kind: 'fresh', candidate, stale: v.use === 'stale' }
    if (v.use === 'swr') return { kind: 'stale-while-revalidate', candidate }
    if (onlyIfCached) return { kind: 'not-cached' }
    return { kind: 'revalidate', candidate, fwd: v.use === 'revalidate' ? v.why : 'stale' }
  }
  if (onlyIfCached) return { kind: 'not-cached' }
  const fwd = varyMiss ? 'vary-miss' : 'uri-miss'
  // A partial request with nothing stored goes as it is: fetching the whole object for one range could be far more
  // than the client asked for. A HEAD miss likewise (nothing would be stored from it).
  if (req.range !== undefined || method === 'HEAD') return { kind: 'pass', fwd }
  return { kind: 'miss', fwd }
}

/**
 * Freshness objects of stored heads, so a memory-store hit does not rebuild the policy each time. A head is never
 * changed in place (a 304 update makes a new one), so the remembered object stays right.
 */
const restored = new WeakMap<StoredMeta, Freshness>()
function remember (meta: StoredMeta, f: Freshness): Freshness {
  restored.set(meta, f)
  return f
}
