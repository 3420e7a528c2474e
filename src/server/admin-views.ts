/**
 * What the admin API shows that is not a live counter: the running config with its secrets redacted, and the
 * explanation of how a request would be routed (which host key and path prefix matched, what the route does to
 * it, where it goes). Pure functions over a resolved config and a runtime.
 */
import type { ResolvedConfig, ResolvedRoute } from '../config/resolved.js'
import { normalizeHost } from '../routing/host.js'
import { routingTarget, targetError } from '../routing/path.js'
import type { Runtime } from '../runtime.js'

/** Keys whose values are never shown. */
const SECRET = /token|passphrase|secret|password|^key$|^cert$|^ca$|^hash$/i

/** A JSON-safe copy of `value` with secrets, file contents, functions and compiled objects made readable. */
function view (value: unknown, key = '', depth = 0): unknown {
  if (depth > 12) return '[deep]'
  if (value === null || value === undefined) return value ?? null
  if (SECRET.test(key) && value !== false) return '[redacted]'
  if (typeof value === 'function') return '[function]'
  if (typeof value === 'bigint') return String(value)
  if (typeof value !== 'object') return value
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`
  if (value instanceof RegExp) return value.source
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), view(v, String(k), depth + 1)]))
  if (value instanceof Set) return [...value].map((v) => view(v, '', depth + 1))
  if (Array.isArray(value)) return value.map((v) => view(v, key, depth + 1))
  // A compiled template: its literal text, or a marker when it has placeholders.
  const t = value as { literal?: unknown, render?: unknown }
  if (typeof t.render === 'function' && 'literal' in t) return t.literal ?? '[template]'
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = view(v, k, depth + 1)
  return out
}

/** The running config as the admin API shows it: every default applied, secrets and key material redacted. */
export function redactedConfig (config: ResolvedConfig): unknown {
  const shown = view(config) as Record<string, unknown>
  // basicAuth users: names stay, hashes go (view redacts `hash`).
  return shown
}

/** The rules a route carries, by name. */
function ruleNames (r: ResolvedRoute): string[] {
  const rules = r.rules
  if (rules === null) return []
  const names: string[] = []
  for (const [k, v] of Object.entries(rules)) {
    if (v === null || v === false || v === undefined) continue
    if (k === 'maxRequestBody') names.push('limits.maxRequestBody')
    else names.push(k)
  }
  return names
}

/** How a request would be routed. */
export interface Explanation {
  host: string
  path: string
  method: string
  matched: boolean
  /** The host key that matched and its kind, the route's path prefix. */
  hostKey?: string
  hostKind?: string
  route?: string
  prefix?: string
  stripPrefix?: boolean
  /** The rules that apply, in the documented order. */
  rules?: string[]
  cache?: boolean
  /** The pool and its nodes, or "answered by the route" (respond/redirect). */
  upstream?: { pool: string, policy: string, nodes: string[] } | string
  why: string
}

/** Explains `method host path` against `runtime` (and the config it came from). */
export function explain (runtime: Runtime, config: ResolvedConfig, host: string, path: string, method: string): Explanation {
  const base = { host, path, method }
  const h = normalizeHost(host)
  if (h === null) return { ...base, matched: false, why: 'not a valid Host: the request would get 400' }
  const p = path.startsWith('/') ? path : `/${path}`
  const routing = runtime.paths.normalize === 'off' ? (targetError(p) ?? p) : routingTarget(p, runtime.paths)
  if (!routing.startsWith('/')) return { ...base, matched: false, why: `the path is refused (${routing}): the request would get 400` }
  const table = runtime.router.hostTable(h)
  const match = runtime.router.match(h, routing)
  if (table === null || match === null) {
    return { ...base, matched: false, why: table === null ? `no host key matches "${h}": 404` : `host "${h}" has routes, but none whose path prefix covers "${routing}": 404` }
  }
  const entry = runtime.router.describe().find((e) => e.table === table)
  const route = match.route
  const resolved = config.routes.find((r) => r.name === route.name)
  const pool = route.upstream
  const rules = resolved === undefined ? [] : ruleNames(resolved)
  const hostWhy = entry === undefined ? '' : entry.kind === 'exact' ? `exact host "${entry.host}"` : entry.kind === 'catch-all' ? 'the catch-all host "*"' : `the ${entry.kind} key "${entry.host}" (the most specific that matches)`
  return {
    ...base,
    matched: true,
    hostKey: entry?.host,
    hostKind: entry?.kind,
    route: route.name,
    prefix: route.path,
    stripPrefix: route.stripPrefix,
    rules,
    cache: route.cache !== null,
    upstream: pool === null ? 'answered by the route' : { pool: pool.name, policy: pool.settings.policy, nodes: pool.members.map((m) => m.id) },
    why: `${hostWhy}, then the longest path prefix "${route.path}" covering "${routing}"${rules.length > 0 ? `; rules: ${rules.join(', ')}` : ''}`
  }
}
