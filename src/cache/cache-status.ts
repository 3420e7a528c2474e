/**
 * The `Cache-Status` field (RFC 9211): what the cache did for a response, as `Portico; hit; ttl=42` or
 * `Portico; fwd=uri-miss; fwd-status=200; stored; ttl=60`. A typed, immutable builder: every parameter the cache
 * says has a method, parameters appear in the order they were added, and a value is never edited as text.
 */

/** RFC 9211 §2.2 `fwd`: why the request went forward. `miss` is for only-if-cached answers with nothing usable. */
export type FwdReason = 'bypass' | 'method' | 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale'

/** RFC 9211 §2.8 `detail`, as Portico uses it: why something happened (or a response was not stored). */
export type Detail =
  | 'stale-while-revalidate' | 'stale-if-error' | 'only-if-cached' | 'collapse-timeout' | 'vary' | 'store-unavailable'
  | 'purged' | 'too-large' | 'store-declined' | 'not-storable' | 'no-freshness'
  | 'method' | 'status' | 'no-store' | 'private' | 'authorization' | 'set-cookie' | 'vary-star'

/** One Cache-Status value. */
export class CacheStatus {
  readonly text: string

  private constructor (text: string) {
    this.text = text
  }

  /** Served from the cache; `ttl` is the remaining freshness in seconds (negative when stale, §2.5). */
  static hit (name: string, ttl: number): CacheStatus {
    return new CacheStatus(`${name}; hit; ttl=${Math.floor(ttl)}`)
  }

  /** Went forward to the origin, for `reason`. */
  static forward (name: string, reason: FwdReason): CacheStatus {
    return new CacheStatus(`${name}; fwd=${reason}`)
  }

  /** §2.3: the status the forwarded request got. */
  fwdStatus (status: number): CacheStatus {
    return new CacheStatus(`${this.text}; fwd-status=${status}`)
  }

  /** §2.4, §2.5: the response was stored, fresh for `ttl` seconds. */
  stored (ttl: number): CacheStatus {
    return new CacheStatus(`${this.text}; stored; ttl=${Math.floor(ttl)}`)
  }

  /** §2.6: the request was collapsed with another one for the same key. */
  collapsed (): CacheStatus {
    return new CacheStatus(`${this.text}; collapsed`)
  }

  /** §2.8: why. */
  detail (detail: Detail): CacheStatus {
    return new CacheStatus(`${this.text}; detail=${detail}`)
  }

  toString (): string {
    return this.text
  }
}
