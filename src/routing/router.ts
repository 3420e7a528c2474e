/**
 * The route table: host → path table → route, compiled once per config. Pure: it takes plain route data and
 * answers `match(host, target)` with no I/O.
 *
 * Host precedence: an exact name first (one Map lookup); then prefix keys ("api.") and wildcards
 * ("*.example.com", one or more labels) together, the longest key winning (one Map lookup per label boundary,
 * never a scan of every route); then the "*" catch-all. The chosen host's path table decides: the longest
 * prefix on segment boundaries wins. There is no fall-back to a less specific host when no path matches, as in
 * nginx's server blocks.
 */

/** What the router needs of a route. */
export interface RoutableRoute {
  hosts: readonly string[]
  path: string
}

/** A match: the route and the length of its path prefix in the target (for stripPrefix). */
export interface RouteMatch<R> {
  route: R
  prefixLength: number
}

class PathTable<R extends RoutableRoute> {
  // Longest prefix first.
  readonly #entries: { path: string, route: R }[] = []

  add (route: R): void {
    this.#entries.push({ path: route.path, route })
    this.#entries.sort((a, b) => b.path.length - a.path.length)
  }

  match (target: string): RouteMatch<R> | null {
    for (const e of this.#entries) {
      const p = e.path
      if (p === '/') return { route: e.route, prefixLength: 0 }
      if (target.startsWith(p)) {
        const next = target.charCodeAt(p.length)
        // RFC 3986 §3.3: match whole segments; the path ends at "?" (the query).
        if (Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */) {
          return { route: e.route, prefixLength: p.length }
        }
      }
    }
    return null
  }

  /** Routes, longest prefix first. */
  get routes (): R[] {
    return this.#entries.map((e) => e.route)
  }
}

/** One host key of the compiled table and its routes, longest path first. */
export interface HostEntry<R extends RoutableRoute> {
  host: string
  kind: 'exact' | 'prefix' | 'wildcard' | 'catch-all'
  routes: R[]
  /** The path table behind it (what `hostTable` returns for a host this key matches). */
  table: PathTable<R>
}

/** A compiled route table. */
export class Router<R extends RoutableRoute> {
  readonly #exact = new Map<string, PathTable<R>>()
  /** Prefix keys, stored with their trailing dot: "api.". */
  readonly #prefix = new Map<string, PathTable<R>>()
  /** Wildcards, stored as the suffix with its leading dot: ".example.com". */
  readonly #suffix = new Map<string, PathTable<R>>()
  #catchAll: PathTable<R> | null = null
  readonly #hasPrefix: boolean
  readonly #hasSuffix: boolean

  constructor (routes: readonly R[]) {
    for (const route of routes) {
      for (const host of route.hosts) this.#tableFor(host).add(route)
    }
    this.#hasPrefix = this.#prefix.size > 0
    this.#hasSuffix = this.#suffix.size > 0
  }

  #tableFor (host: string): PathTable<R> {
    let map: Map<string, PathTable<R>>
    let key = host
    if (host === '*') {
      this.#catchAll ??= new PathTable()
      return this.#catchAll
    } else if (host.startsWith('*.')) {
      map = this.#suffix
      key = host.slice(1)
    } else if (host.endsWith('.')) {
      map = this.#prefix
    } else {
      map = this.#exact
    }
    let table = map.get(key)
    if (table === undefined) {
      table = new PathTable()
      map.set(key, table)
    }
    return table
  }

  /** The path table for a normalized host, by precedence, or null. */
  hostTable (host: string): PathTable<R> | null {
    const exact = this.#exact.get(host)
    if (exact !== undefined) return exact
    if (this.#hasPrefix || this.#hasSuffix) {
      let best: PathTable<R> | null = null
      let bestLength = 0
      let bestIsPrefix = false
      for (let i = host.indexOf('.'); i !== -1; i = host.indexOf('.', i + 1)) {
        // The longer key wins; on a tie between a prefix key and a wildcard, the prefix key.
        if (this.#hasPrefix && (i + 1 > bestLength || (i + 1 === bestLength && !bestIsPrefix))) {
          // "api." matches "api.example.com": a prefix ending at this dot, with something after it.
          if (i + 1 < host.length) {
            const t = this.#prefix.get(host.slice(0, i + 1))
            if (t !== undefined) { best = t; bestLength = i + 1; bestIsPrefix = true }
          }
        }
        if (this.#hasSuffix && host.length - i > bestLength && i > 0) {
          // "*.example.com" matches "a.example.com" and "a.b.example.com": at least one label before.
          const t = this.#suffix.get(host.slice(i))
          if (t !== undefined) { best = t; bestLength = host.length - i; bestIsPrefix = false }
        }
      }
      if (best !== null) return best
    }
    return this.#catchAll
  }

  /** Finds the route for a normalized host and a request target (origin-form, query included). */
  match (host: string, target: string): RouteMatch<R> | null {
    const table = this.hostTable(host)
    return table === null ? null : table.match(target)
  }

  /** The compiled table, most specific first, for `portico check`. */
  describe (): HostEntry<R>[] {
    const out: HostEntry<R>[] = []
    for (const [h, t] of this.#exact) out.push({ host: h, kind: 'exact', routes: t.routes, table: t })
    const mixed: (HostEntry<R> & { len: number })[] = []
    for (const [h, t] of this.#prefix) mixed.push({ host: h, kind: 'prefix', routes: t.routes, table: t, len: h.length })
    for (const [h, t] of this.#suffix) mixed.push({ host: `*${h}`, kind: 'wildcard', routes: t.routes, table: t, len: h.length })
    mixed.sort((a, b) => b.len - a.len)
    for (const { len: _len, ...m } of mixed) out.push(m)
    if (this.#catchAll !== null) out.push({ host: '*', kind: 'catch-all', routes: this.#catchAll.routes, table: this.#catchAll })
    return out
  }
}

/**
 * Removes a matched prefix from a target and keeps the rest byte-exact: "/api/x?q" → "/x?q", "/api?q" → "/?q",
 * "/api" → "/".
 */
export function stripPrefix (target: string, prefixLength: number): string {
  if (prefixLength === 0) return target
  const rest = target.slice(prefixLength)
  return rest.length === 0 || rest.charCodeAt(0) !== 47 ? `/${rest}` : rest
}
