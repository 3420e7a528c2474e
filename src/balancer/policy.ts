/**
 * Balancing policies: which usable member of a pool takes the next attempt. A policy sees the pool only through
 * `PoolView` (indexes, usable, effective weight, requests in flight); the pool owns the members and their health, and
 * builds a fresh policy whenever membership changes. Every policy answers -1 when no member is usable.
 *
 * - `round-robin` / `weighted-round-robin` (one algorithm): nginx's smooth weighted round-robin, each member as often
 *   as its effective weight (read at every pick, so slow start ramps a member in), interleaved rather than in bursts;
 *   with equal weights a plain rotation. For identical nodes and requests of uniform cost.
 * - `least-requests`: the fewest requests in flight per unit of weight, (in flight + 1) / weight; ties rotate so that
 *   equal members share evenly. For requests of uneven cost and nodes of uneven speed.
 * - `random-two`: "power of two choices": two distinct members drawn at random (by weight), the less loaded one
 *   (in flight / weight; on a tie the first draw, so that idle members share by weight). Nearly as good as
 *   least-requests without its herd when many proxies share a pool.
 * - `first`: the first usable member in order (active/standby, ordered failover).
 * - `hash`: a consistent hash ring (ketama: about 160 points per unit of weight) over the request's key; adding or
 *   removing one member of N moves about 1/N of the keys, and an unusable member's keys go to the next usable member
 *   on the ring while other keys stay. The ring uses the configured weights (slow start does not apply); a request
 *   without a key goes round-robin.
 *
 * `pick` runs for every attempt: it allocates nothing and is O(members) (O(log points) to find a key on the ring).
 */
import type { PolicyName } from '../config/resolved.js'

/** The balancing policies a pool can run (config/resolved.ts names them). */
export type { PolicyName }

/** What a policy sees of a pool: indexes 0..size-1 of its members. Implemented by the pool; methods are cheap. */
export interface PoolView {
  readonly size: number
  /** May member i take a request now (healthy, not ejected, not already tried by this request, below its limit). */
  usable (i: number): boolean
  /** Member i's effective weight (> 0; slow start may make it fractional, e.g. 0.25). */
  weight (i: number): number
  /** Requests in flight on member i. */
  inflight (i: number): number
}

/** A member as the policy is built with: a stable identity (used by the hash ring) and its configured weight. */
export interface PolicyMember { id: string, weight: number }

/** Chooses among a pool's members. */
export interface BalancingPolicy {
  /**
   * Index of the member for the next attempt, or -1 when no member is usable. `key` is the request's hash key (hash
   * policy only; null = none, then pick like round-robin among usable members). Must not allocate on the common path.
   */
  pick (view: PoolView, key: string | null): number
}

/**
 * 32-bit hash of a string: FNV-1a over its UTF-16 code units, finished with murmur3's fmix32 (FNV-1a alone mixes its
 * last characters poorly into the high bits, which the ring's order depends on).
 */
export function hash32 (s: string): number {
  return fmix32(fnv1a(FNV_BASIS, s))
}

const FNV_BASIS = 0x811c9dc5

/** FNV-1a's state `h` fed the UTF-16 code units of `s`. */
function fnv1a (h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h
}

/** FNV-1a's state `h` fed the decimal digits of `k` (a whole number ≥ 0), as `fnv1a(h, String(k))` without a string. */
function fnv1aDigits (h: number, k: number): number {
  let p = 1
  while (p * 10 <= k) p *= 10
  for (; p >= 1; p /= 10) {
    h ^= 0x30 + Math.floor(k / p) % 10
    h = Math.imul(h, 0x01000193)
  }
  return h
}

/** murmur3's finalizer: every input bit affects every output bit. */
function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * Smooth weighted round-robin (nginx's ngx_http_upstream_get_peer): at each pick every usable member's `current`
 * grows by its effective weight, the largest `current` wins (the first on a tie) and loses the usable members' total.
 * Weights 5,1,1 give a a b a c a a. When all configured weights are equal a rotating index gives the same fair
 * rotation in O(1); it hands over to the smooth algorithm as soon as it meets a usable member whose effective weight
 * differs from its configured one (slow start), and takes over again once that member is back to its full weight.
 */
class SmoothRoundRobin implements BalancingPolicy {
  readonly #configured: Float64Array
  readonly #current: Float64Array
  /** All configured weights are equal: the rotation may be used. */
  readonly #equal: boolean
  /** Where the rotation looks first. */
  #next = 0
  /** The last pick was the rotation's: `#current` is stale and starts again from zero. */
  #rotated = true

  constructor (members: readonly PolicyMember[]) {
    this.#configured = Float64Array.from(members, (m) => m.weight)
    this.#current = new Float64Array(members.length)
    this.#equal = members.every((m) => m.weight === members[0].weight)
  }

  pick (view: PoolView, _key: string | null): number {
    const n = Math.min(view.size, this.#configured.length)
    if (n === 0) return -1
    if (this.#equal) {
      let i = this.#next < n ? this.#next : 0
      let k = 0
      for (; k < n; k++) {
        if (view.usable(i)) {
          // In slow start: the smooth algorithm, which stays on while this member (the rotation's next) ramps up.
          if (view.weight(i) !== this.#configured[i]) break
          this.#next = i + 1 === n ? 0 : i + 1
          this.#rotated = true
          return i
        }
        if (++i === n) i = 0
      }
      if (k === n) return -1
    }
    const cur = this.#current
    if (this.#rotated) {
      cur.fill(0)
      this.#rotated = false
    }
    let best = -1
    let total = 0
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

/**
 * The lowest (in flight + 1) / weight: the load a member would have with this request, per unit of weight. Ties go to
 * the first in rotation order from just after the last pick, so that equal members take turns.
 */
class LeastRequests implements BalancingPolicy {
  #start = 0

  pick (view: PoolView, _key: string | null): number {
    const n = view.size
    if (n === 0) return -1
    let i = this.#start < n ? this.#start : 0
    let best = -1
    let bestScore = Infinity
    for (let k = 0; k < n; k++) {
      if (view.usable(i)) {
        const score = (view.inflight(i) + 1) / view.weight(i)
        if (best === -1 || score < bestScore) {
          best = i
          bestScore = score
        }
      }
      if (++i === n) i = 0
    }
    if (best !== -1) this.#start = best + 1 === n ? 0 : best + 1
    return best
  }
}

/**
 * Power of two choices: two distinct usable members, each drawn with probability proportional to its weight (the
 * second among the others), and the one with less in flight per unit of weight. A tie keeps the first draw: idle
 * members then share by weight (1:3 gives 25%/75%), where (in flight + 1) / weight would always send an idle pool's
 * traffic to its heaviest member. Loads are compared by cross-multiplying, without dividing.
 */
class RandomTwo implements BalancingPolicy {
  pick (view: PoolView, _key: string | null): number {
    const n = view.size
    let total = 0
    let count = 0
    let only = -1
    let w0 = 0
    let equal = true
    for (let i = 0; i < n; i++) {
      if (!view.usable(i)) continue
      const w = view.weight(i)
      if (count === 0) w0 = w
      else if (w !== w0) equal = false
      total += w
      count++
      only = i
    }
    if (count <= 1) return only
    let a: number
    let b: number
    if (equal) {
      // Uniform: the ra-th and rb-th usable members, rb ≠ ra.
      const ra = Math.floor(Math.random() * count)
      let rb = Math.floor(Math.random() * (count - 1))
      if (rb >= ra) rb++
      if (count === n) {
        a = ra
        b = rb
      } else {
        a = nthUsable(view, ra)
        b = nthUsable(view, rb)
      }
    } else {
      a = drawWeighted(view, total, -1)
      b = drawWeighted(view, total - view.weight(a), a)
    }
    return view.inflight(b) * view.weight(a) < view.inflight(a) * view.weight(b) ? b : a
  }
}

/** The index of the r-th usable member (from 0); the last usable one if there are fewer. */
function nthUsable (view: PoolView, r: number): number {
  let last = -1
  for (let i = 0; i < view.size; i++) {
    if (!view.usable(i)) continue
    if (r-- === 0) return i
    last = i
  }
  return last
}

/** A usable member other than `except`, drawn with probability weight / `total` (the others' total weight). */
function drawWeighted (view: PoolView, total: number, except: number): number {
  let r = Math.random() * total
  let last = -1
  for (let i = 0; i < view.size; i++) {
    if (i === except || !view.usable(i)) continue
    last = i
    r -= view.weight(i)
    if (r < 0) return i
  }
  return last // rounding left r just above 0
}

/** The first usable member. */
class First implements BalancingPolicy {
  pick (view: PoolView, _key: string | null): number {
    for (let i = 0; i < view.size; i++) if (view.usable(i)) return i
    return -1
  }
}

/** Points on the ring per unit of weight (ketama's 160: 40 MD5 digests of 4 points each). */
const POINTS = 160

/**
 * Most points on a ring (1,638 members of weight 1; building it takes some tens of milliseconds): beyond, every
 * member's count is scaled down alike. Weights go up to 1,000,000; a scaled ring is still consistent for a given
 * membership, but a change of members then also moves the points of the others (their counts change).
 */
const MAX_RING = 1 << 18

/** Member indexes are packed below ring positions into one float64 sort key: at most 2^21 members. */
const INDEX_SPAN = 1 << 21

/**
 * Consistent hashing on a ketama ring: member i has about 160 × weight points at hash32(`${id}#${k}`), k = 0, 1, …;
 * a key belongs to the first point at or after hash32(key), clockwise. A point whose member is unusable passes the
 * key on to the next point; each member is asked at most once per pick (a stamp per member marks those refused).
 * A null key goes round-robin.
 */
class HashRing implements BalancingPolicy {
  /** Point positions, ascending. */
  readonly #points: Uint32Array
  /** The member index of each point. */
  readonly #owners: Int32Array
  /** Per member: the pick (#epoch) that found it unusable. */
  readonly #refused: Uint32Array
  #epoch = 0
  readonly #fallback: SmoothRoundRobin

  constructor (members: readonly PolicyMember[]) {
    if (members.length > INDEX_SPAN) throw new RangeError(`a hash ring takes at most ${INDEX_SPAN} members`)
    let wanted = 0
    for (const m of members) wanted += POINTS * m.weight
    const scale = wanted > MAX_RING ? MAX_RING / wanted : 1
    const counts = members.map((m) => Math.max(1, Math.round(POINTS * m.weight * scale)))
    let len = 0
    for (const c of counts) len += c
    // Sort (position, index) pairs packed as position × 2^21 + index (exact below 2^53): ties go to the lower index.
    const keys = new Float64Array(len)
    let p = 0
    members.forEach((m, idx) => {
      const prefix = fnv1a(FNV_BASIS, `${m.id}#`)
      for (let k = 0; k < counts[idx]; k++) keys[p++] = fmix32(fnv1aDigits(prefix, k)) * INDEX_SPAN + idx // hash32(`${id}#${k}`)
    })
    keys.sort()
    this.#points = new Uint32Array(len)
    this.#owners = new Int32Array(len)
    for (let j = 0; j < len; j++) {
      const idx = keys[j] % INDEX_SPAN
      this.#owners[j] = idx
      this.#points[j] = (keys[j] - idx) / INDEX_SPAN
    }
    this.#refused = new Uint32Array(members.length)
    this.#fallback = new SmoothRoundRobin(members)
  }

  pick (view: PoolView, key: string | null): number {
    if (key === null) return this.#fallback.pick(view, null)
    const points = this.#points
    const owners = this.#owners
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
    if (lo === len) lo = 0
    const first = owners[lo]
    if (first < view.size && view.usable(first)) return first
    // Walk clockwise, skipping the points of members already refused.
    const refused = this.#refused
    if (++this.#epoch === 0x100000000) {
      refused.fill(0)
      this.#epoch = 1
    }
    const epoch = this.#epoch
    refused[first] = epoch
    let left = refused.length - 1
    const size = view.size
    let j = lo
    for (let k = 1; k < len && left > 0; k++) {
      if (++j === len) j = 0
      const o = owners[j]
      if (refused[o] === epoch) continue
      if (o < size && view.usable(o)) return o
      refused[o] = epoch
      left--
    }
    return -1
  }
}

/** A fresh policy for these members (called again whenever membership changes): `view.size` is `members.length`. */
export function createPolicy (name: PolicyName, members: readonly PolicyMember[]): BalancingPolicy {
  switch (name) {
    case 'round-robin':
    case 'weighted-round-robin':
      return new SmoothRoundRobin(members)
    case 'least-requests': return new LeastRequests()
    case 'random-two': return new RandomTwo()
    case 'first': return new First()
    case 'hash': return new HashRing(members)
    default: throw new TypeError(`unknown balancing policy: ${name as string}`)
  }
}
