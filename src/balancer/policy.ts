/**
 * Balancing policies: which usable member of a pool takes the next attempt. A policy sees the pool only through
 * `PoolView` (indexes, usable, effective weight, requests in flight); the pool owns members and their health.
 *
 * - `round-robin` / `weighted-round-robin`: nginx's smooth weighted round-robin, each member as often as its weight,
 *   interleaved; with equal weights a plain rotation. For identical nodes and uniform requests.
 * - `least-requests`: fewest requests in flight per unit of weight. For requests of uneven cost and slow nodes.
 * - `random-two`: two members drawn at random (by weight), the less loaded one ("power of two choices"). Avoids the
 *   herd that least-requests causes when many proxies share a pool.
 * - `first`: the first usable member in order (active/standby).
 * - `hash`: a consistent hash ring (ketama: 160 points per unit of weight) over a request key; adding or removing one
 *   member of N moves about 1/N of the keys, and an unusable member's keys go to the next member on the ring.
 */
import type { PolicyName } from '../config/resolved.js'

export type { PolicyName }

/** What a policy sees of a pool: indexes 0..size-1 of its members. Implemented by the pool; methods are cheap. */
export interface PoolView {
  readonly size: number
  /** May member i take a request now (healthy, not ejected, not already tried by this request, below its limit). */
  usable (i: number): boolean
  /** Member i's effective weight (> 0; slow start may make it fractional). */
  weight (i: number): number
  /** Requests in flight on member i. */
  inflight (i: number): number
}

/** A member as the policy is built with: a stable identity (for the hash ring) and its configured weight. */
export interface PolicyMember { id: string, weight: number }

/** Chooses among a pool's members. */
export interface BalancingPolicy {
  /**
   * The index of the member for the next attempt, or -1 when none is usable. `key` is the request's hash key
   * (hash policy only; null: any member). Must not allocate on the common path.
   */
  pick (view: PoolView, key: string | null): number
}

/** 32-bit FNV-1a of the UTF-16 code units, finished with murmur3's fmix32 for avalanche. */
export function hash32 (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Smooth weighted round-robin (nginx ngx_http_upstream_get_peer), with a plain rotation when weights are equal. */
class SmoothRoundRobin implements BalancingPolicy {
  readonly #configured: Float64Array
  readonly #current: Float64Array
  readonly #equal: boolean
  #next = 0

  constructor (members: readonly PolicyMember[]) {
    this.#configured = Float64Array.from(members, (m) => m.weight)
    this.#current = new Float64Array(members.length)
    this.#equal = members.every((m) => m.weight === members[0].weight)
  }

  pick (view: PoolView, _key: string | null): number {
    const n = view.size
    if (this.#equal) {
      // Equal weights: a rotation, unless slow start makes an effective weight differ.
      let fallback = true
      for (let k = 0; k < n; k++) {
        const i = (this.#next + k) % n
        if (!view.usable(i)) continue
        if (view.weight(i) !== this.#configured[i]) {
          fallback = false
          break
        }
        this.#next = (i + 1) % n
        return i
      }
      if (fallback) return -1
    }
    let best = -1
    let total = 0
    const cur = this.#current
    for (let i = 0; i < n; i++) {
      if (!view.usable(i)) continue
      const w = view.weight(i)
      cur[i] += w
      total += w
      if (best === -1 || cur[i] > cur[best]) best = i
    }
    if (best !== -1) cur[best] -= total
    return best
  }
}

/** Fewest (in flight + 1) / weight; ties rotate so equal members share evenly. */
class LeastRequests implements BalancingPolicy {
  #start = 0

  pick (view: PoolView, _key: string | null): number {
    const n = view.size
    let best = -1
    let bestScore = Infinity
    const start = this.#start
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n
      if (!view.usable(i)) continue
      const score = (view.inflight(i) + 1) / view.weight(i)
      if (score < bestScore) {
        best = i
        bestScore = score
      }
    }
    if (n !== 0) this.#start = (start + 1) % n
    return best
  }
}

/** Power of two choices, each draw weighted. */
class RandomTwo implements BalancingPolicy {
  pick (view: PoolView, _key: string | null): number {
    const a = drawWeighted(view, -1)
    if (a === -1) return -1
    const b = drawWeighted(view, a)
    if (b === -1) return a
    const sa = (view.inflight(a) + 1) / view.weight(a)
    const sb = (view.inflight(b) + 1) / view.weight(b)
    return sb < sa ? b : a
  }
}

/** A usable member other than `except`, drawn with probability proportional to its weight; -1 when none. */
function drawWeighted (view: PoolView, except: number): number {
  const n = view.size
  let total = 0
  for (let i = 0; i < n; i++) if (i !== except && view.usable(i)) total += view.weight(i)
  if (total === 0) return -1
  let r = Math.random() * total
  let last = -1
  for (let i = 0; i < n; i++) {
    if (i === except || !view.usable(i)) continue
    last = i
    r -= view.weight(i)
    if (r < 0) return i
  }
  return last
}

/** The first usable member. */
class First implements BalancingPolicy {
  pick (view: PoolView, _key: string | null): number {
    for (let i = 0; i < view.size; i++) if (view.usable(i)) return i
    return -1
  }
}

/** Points per unit of weight on the ring. */
const POINTS = 160

/** Consistent hashing on a ketama ring; a null key goes round-robin. */
class HashRing implements BalancingPolicy {
  readonly #points: Uint32Array
  readonly #owners: Int32Array
  readonly #fallback: SmoothRoundRobin

  constructor (members: readonly PolicyMember[]) {
    const entries: [number, number][] = []
    members.forEach((m, idx) => {
      const count = Math.max(1, Math.round(POINTS * m.weight))
      for (let k = 0; k < count; k++) entries.push([hash32(`${m.id}#${k}`), idx])
    })
    entries.sort((x, y) => x[0] - y[0] || x[1] - y[1])
    this.#points = Uint32Array.from(entries, (e) => e[0])
    this.#owners = Int32Array.from(entries, (e) => e[1])
    this.#fallback = new SmoothRoundRobin(members)
  }

  pick (view: PoolView, key: string | null): number {
    if (key === null) return this.#fallback.pick(view, null)
    const points = this.#points
    const len = points.length
    if (len === 0) return -1
    const h = hash32(key)
    let lo = 0
    let hi = len
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid] < h) lo = mid + 1
      else hi = mid
    }
    // Walk clockwise to the first point whose member is usable, asking each member at most once.
    let refused = -1
    for (let k = 0; k < len; k++) {
      const owner = this.#owners[(lo + k) % len]
      if (owner === refused) continue
      if (view.usable(owner)) return owner
      refused = owner
      if (k > 0 && k >= view.size * POINTS * 4) break
    }
    // Many members refused: ask each one directly.
    for (let i = 0; i < view.size; i++) if (view.usable(i)) return i
    return -1
  }
}

/** A fresh policy for these members (built again whenever membership changes). */
export function createPolicy (name: PolicyName, members: readonly PolicyMember[]): BalancingPolicy {
  switch (name) {
    case 'round-robin':
    case 'weighted-round-robin':
      return new SmoothRoundRobin(members)
    case 'least-requests': return new LeastRequests()
    case 'random-two': return new RandomTwo()
    case 'first': return new First()
    case 'hash': return new HashRing(members)
  }
}
