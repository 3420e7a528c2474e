/**
 * The meaning pass of the traffic rules (rules-schema.ts → ResolvedRules): a route's value of each rule, or else the
 * top level's (`false` turns a top-level default off); placeholders compiled, regular expressions compiled and
 * refused when they can backtrack catastrophically, address lists checked, files read. Returns null for a route
 * with no rule at all, so that such a route runs no rule code.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { compileTemplate, unsafeRegex, type Template } from '../rules/placeholders.js'
import { isAddressEntry } from '../http/address-set.js'
import { parseUsers } from '../rules/basic-auth.js'
import { DEFAULTS } from './defaults.js'
import { parseDuration } from './units.js'
import type { ParsedConfig, ParsedRoute } from './schema.js'
import type { ConfigIssue, RateKey, ResolvedCors, ResolvedHeaderEdits, ResolvedRules } from './resolved.js'

type Path = (string | number)[]

/** Where rules are resolved: files relative to `baseDir`, problems collected in `issues`. */
export interface RulesScope {
  baseDir: string
  issues: ConfigIssue[]
}

/** Largest error page read into memory. */
const MAX_PAGE = 1024 * 1024

/** The rules of `route` at `at` (the top level `cfg` supplying defaults), or null when it has none. */
export function resolveRules (route: ParsedRoute, cfg: ParsedConfig, at: Path, scope: RulesScope): ResolvedRules | null {
  const issues = scope.issues
  /** The route's value, or the top level's; `false` is "off", kept as null. */
  function pick<K extends keyof ParsedConfig & keyof ParsedRoute> (key: K): { value: Exclude<ParsedRoute[K], false | undefined> | null, at: Path } {
    const own = route[key]
    if (own !== undefined) return { value: own === false ? null : own as Exclude<ParsedRoute[K], false | undefined>, at: [...at, key] }
    const top = cfg[key] as ParsedRoute[K]
    return { value: top === undefined || top === false ? null : top as Exclude<ParsedRoute[K], false | undefined>, at: [key] }
  }
  const template = (text: string, where: Path, captures = false): Template | null => {
    try {
      return compileTemplate(text, captures)
    } catch (err) {
      issues.push({ path: where, message: (err as Error).message, value: text })
      return null
    }
  }
  const regex = (source: string, where: Path): RegExp | null => {
    const unsafe = unsafeRegex(source)
    if (unsafe !== null) {
      issues.push({ path: where, message: unsafe, value: source })
      return null
    }
    try {
      return new RegExp(source)
    } catch (err) {
      issues.push({ path: where, message: `expected a regular expression: ${(err as Error).message}`, value: source })
      return null
    }
  }
  const addresses = (list: string[] | undefined | null, where: Path): string[] | null => {
    if (list === undefined || list === null) return null
    list.forEach((e, i) => {
      if (!isAddressEntry(e)) issues.push({ path: [...where, i], message: 'expected an address, a CIDR such as "10.0.0.0/8", "private" or "loopback"', value: e })
    })
    return list
  }

  const stripPrefix = route.stripPrefix ?? DEFAULTS['routes.stripPrefix']
  const preserveHost = route.preserveHost ?? DEFAULTS['routes.preserveHost']

  const allow = pick('allow')
  const deny = pick('deny')
  const rateLimit = pick('rateLimit')
  const cors = pick('cors')
  const compress = pick('compress')
  const security = pick('securityHeaders')
  const pages = pick('errorPages')
  const basic = pick('basicAuth')
  const fwd = pick('forwardAuth')
  const requestHeaders = route.headers?.request !== undefined ? { value: route.headers.request, at: [...at, 'headers', 'request'] } : { value: cfg.headers?.request ?? null, at: ['headers', 'request'] }
  const responseHeaders = route.headers?.response !== undefined ? { value: route.headers.response, at: [...at, 'headers', 'response'] } : { value: cfg.headers?.response ?? null, at: ['headers', 'response'] }

  const rules: ResolvedRules = {
    allow: addresses(allow.value, allow.at),
    deny: addresses(deny.value, deny.at),
    basicAuth: null,
    forwardAuth: fwd.value === null
      ? null
      : {
          url: fwd.value.url,
          copyRequestHeaders: fwd.value.copyRequestHeaders?.map((h) => h.toLowerCase()) ?? null,
          copyResponseHeaders: (fwd.value.copyResponseHeaders ?? []).map((h) => h.toLowerCase()),
          timeout: fwd.value.timeout ?? DEFAULTS['routes.forwardAuth.timeout']
        },
    rateLimit: null,
    redirect: null,
    respond: null,
    addPrefix: route.addPrefix === undefined ? null : route.addPrefix.replace(/\/+$/, ''),
    replacePath: route.replacePath ?? null,
    rewrite: null,
    requestHeaders: edits(requestHeaders.value, requestHeaders.at, template),
    responseHeaders: edits(responseHeaders.value, responseHeaders.at, template),
    securityHeaders: null,
    cors: null,
    rewriteRedirects: false,
    rewriteCookies: false,
    compress: compress.value === null
      ? null
      : {
          encodings: (compress.value === true ? undefined : compress.value.encodings) ?? [...DEFAULTS['routes.compress.encodings']],
          minSize: (compress.value === true ? undefined : compress.value.minSize) ?? DEFAULTS['routes.compress.minSize'],
          types: (compress.value === true ? undefined : compress.value.types) ?? [...DEFAULTS['routes.compress.types']]
        },
    errorPages: null,
    maxRequestBody: route.limits?.maxRequestBody
  }

  if (fwd.value !== null && !/^https?:\/\//i.test(fwd.value.url)) issues.push({ path: [...fwd.at, 'url'], message: 'expected an http:// or https:// URL', value: fwd.value.url })

  if (basic.value !== null) {
    const users = basic.value.users
    try {
      const text = typeof users === 'string' ? readFileSync(path.resolve(scope.baseDir, users), 'utf8') : users
      rules.basicAuth = { users: parseUsers(text), realm: basic.value.realm ?? DEFAULTS['routes.basicAuth.realm'] }
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      const message = e.code === 'ENOENT' ? `no such file: ${String(users)}` : typeof users === 'string' ? `${users}: ${e.message}` : e.message
      issues.push({ path: [...basic.at, 'users'], message, value: typeof users === 'string' ? users : undefined })
    }
  }

  if (rateLimit.value !== null) {
    const r = rateLimit.value
    const store = r.store ?? DEFAULTS['routes.rateLimit.store']
    let redis: { url: string, prefix: string, commandTimeout: number } | null = null
    if (store === 'redis') {
      const cacheRedis = typeof cfg.cache === 'object' ? cfg.cache.redis : undefined
      const url = r.redis?.url ?? cacheRedis?.url
      if (url === undefined) issues.push({ path: [...rateLimit.at, 'store'], message: 'store "redis" needs rateLimit.redis.url (or cache.redis.url)', value: store })
      else if (!/^rediss?:\/\//.test(url)) issues.push({ path: [...rateLimit.at, 'redis', 'url'], message: 'expected a redis:// or rediss:// URL', value: url })
      else redis = { url, prefix: r.redis?.prefix ?? DEFAULTS['routes.rateLimit.redis.prefix'], commandTimeout: cacheRedis?.commandTimeout ?? DEFAULTS['cache.redis.commandTimeout'] }
    }
    const parsed = r.rate === undefined ? null : parseRate(r.rate)
    rules.rateLimit = {
      key: parseRateKey(r.key ?? DEFAULTS['routes.rateLimit.key']),
      rate: parsed?.count ?? null,
      period: parsed?.period ?? 1000,
      burst: r.burst ?? DEFAULTS['routes.rateLimit.burst'],
      store,
      redis,
      maxInFlight: r.maxInFlight ?? 0
    }
  }

  if (route.redirect !== undefined) {
    const r = route.redirect
    const match = r.match === undefined ? null : regex(r.match, [...at, 'redirect', 'match'])
    const to = template(r.to, [...at, 'redirect', 'to'], r.match !== undefined)
    if (to !== null) rules.redirect = { to, status: r.status ?? DEFAULTS['routes.redirect.status'], match }
  }
  if (route.respond !== undefined) {
    const r = route.respond
    const body = r.body === undefined ? null : template(r.body, [...at, 'respond', 'body'])
    const headers: [string, Template][] = []
    for (const [name, value] of Object.entries(r.headers ?? {})) {
      const t = template(value, [...at, 'respond', 'headers', name])
      if (t !== null) headers.push([name.toLowerCase(), t])
    }
    rules.respond = { status: r.status, body, headers }
  }
  if (route.rewrite !== undefined) {
    const match = regex(route.rewrite.match, [...at, 'rewrite', 'match'])
    const replace = template(route.rewrite.replace, [...at, 'rewrite', 'replace'], true)
    if (match !== null && replace !== null) rules.rewrite = { match, replace }
  }
  const rewrites = [route.replacePath, route.rewrite].filter((v) => v !== undefined).length
  if (rewrites > 1) issues.push({ path: [...at, 'replacePath'], message: 'a route has at most one of "replacePath" and "rewrite"' })
  if (route.respond !== undefined && route.redirect !== undefined && route.redirect.match === undefined) {
    issues.push({ path: [...at, 'respond'], message: 'a route with "redirect" (without "match") answers every request: "respond" would never be used' })
  }

  if (security.value !== null) {
    const s = security.value === true ? {} : security.value
    const fields: [string, string][] = []
    const preset = (name: string, v: string | false | undefined, d: string | null): void => {
      const value = v === undefined ? d : v === false ? null : v
      if (value !== null) fields.push([name, value])
    }
    preset('x-content-type-options', s.contentTypeOptions, DEFAULTS['routes.securityHeaders.contentTypeOptions'])
    preset('referrer-policy', s.referrerPolicy, DEFAULTS['routes.securityHeaders.referrerPolicy'])
    preset('x-frame-options', s.frameOptions, DEFAULTS['routes.securityHeaders.frameOptions'])
    preset('content-security-policy', s.contentSecurityPolicy, null)
    rules.securityHeaders = { fields, hsts: s.hsts === false ? null : s.hsts ?? DEFAULTS['routes.securityHeaders.hsts'] }
  }

  if (cors.value !== null) rules.cors = resolveCors(cors.value, cors.at, issues, regex)

  if (pages.value !== null) {
    const map = new Map<string, { body: Buffer, type: string }>()
    for (const [key, file] of Object.entries(pages.value)) {
      if (typeof file !== 'string') continue
      try {
        const full = path.resolve(scope.baseDir, file)
        const body = readFileSync(full)
        if (body.length > MAX_PAGE) throw new Error(`an error page may be at most ${MAX_PAGE} bytes (${body.length})`)
        map.set(key.toLowerCase(), { body, type: mediaType(full) })
      } catch (err) {
        issues.push({ path: [...pages.at, key], message: (err as NodeJS.ErrnoException).code === 'ENOENT' ? `no such file: ${file}` : (err as Error).message, value: file })
      }
    }
    rules.errorPages = { pages: map, intercept: pages.value.intercept === true }
  }

  const prefixDiffers = stripPrefix || rules.addPrefix !== null || !preserveHost
  rules.rewriteRedirects = route.rewriteRedirects ?? cfg.rewriteRedirects ?? prefixDiffers
  rules.rewriteCookies = route.rewriteCookies ?? cfg.rewriteCookies ?? prefixDiffers

  const any = rules.allow !== null || rules.deny !== null || rules.basicAuth !== null || rules.forwardAuth !== null ||
    rules.rateLimit !== null || rules.redirect !== null || rules.respond !== null || rules.addPrefix !== null ||
    rules.replacePath !== null || rules.rewrite !== null || rules.requestHeaders !== null || rules.responseHeaders !== null ||
    rules.securityHeaders !== null || rules.cors !== null || rules.rewriteRedirects || rules.rewriteCookies ||
    rules.compress !== null || rules.errorPages !== null || rules.maxRequestBody !== undefined
  return any ? rules : null
}

/** Compiles one direction's header edits; null when there are none. */
function edits (e: { set?: Record<string, string>, add?: Record<string, string>, remove?: string[] } | null, at: Path,
  template: (text: string, where: Path) => Template | null): ResolvedHeaderEdits | null {
  if (e === null) return null
  const out: ResolvedHeaderEdits = { set: [], add: [], remove: (e.remove ?? []).map((n) => n.toLowerCase()) }
  for (const [kind, list] of [['set', e.set], ['add', e.add]] as const) {
    for (const [name, value] of Object.entries(list ?? {})) {
      const t = template(value, [...at, kind, name])
      if (t !== null) out[kind].push([name.toLowerCase(), t])
    }
  }
  return out.set.length + out.add.length + out.remove.length === 0 ? null : out
}

/** "100/s" → 100 per 1000 ms; "5/10s" → 5 per 10000 ms. The schema has checked the form. */
export function parseRate (text: string): { count: number, period: number } {
  const [count, per] = text.split('/')
  const unit = per.trim()
  const period = parseDuration(/^\d/.test(unit) ? unit : `1${unit}`) ?? 1000
  return { count: Number(count.trim()), period }
}

function parseRateKey (key: string): RateKey {
  if (key === 'client-ip' || key === 'route') return { kind: key }
  return { kind: 'header', name: key.slice(key.indexOf(':') + 1).toLowerCase() }
}

function resolveCors (c: { origins: string[], methods?: string[], headers?: string[], exposeHeaders?: string[], credentials?: boolean, maxAge?: number },
  at: Path, issues: ConfigIssue[], regex: (source: string, where: Path) => RegExp | null): ResolvedCors {
  const origins = new Set<string>()
  const patterns: RegExp[] = []
  let any = false
  c.origins.forEach((o, i) => {
    if (o === '*') any = true
    else if (o.length > 2 && o.startsWith('/') && o.endsWith('/')) {
      const r = regex(o.slice(1, -1), [...at, 'origins', i])
      if (r !== null) patterns.push(r)
    } else if (o.includes('*')) {
      // "https://*.example.com": one or more labels in place of the star.
      const m = /^(https?):\/\/\*\.([^*/]+)$/i.exec(o)
      if (m === null) issues.push({ path: [...at, 'origins', i], message: 'a wildcard origin is written "https://*.example.com"', value: o })
      else patterns.push(new RegExp(`^${m[1].toLowerCase()}://[a-z0-9-]+(\\.[a-z0-9-]+)*\\.${m[2].toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`))
    } else if (!/^https?:\/\/[^/]+$/i.test(o) && o !== 'null') {
      issues.push({ path: [...at, 'origins', i], message: 'expected an origin such as "https://app.example.com" (scheme and host, no path), "*" or /regex/', value: o })
    } else origins.add(o.toLowerCase())
  })
  const headers = c.headers ?? DEFAULTS['routes.cors.headers']
  return {
    origins,
    patterns,
    any,
    methods: (c.methods ?? DEFAULTS['routes.cors.methods']).join(', '),
    headers: headers.includes('*') ? null : headers.join(', '),
    exposeHeaders: c.exposeHeaders === undefined || c.exposeHeaders.length === 0 ? null : c.exposeHeaders.join(', '),
    credentials: c.credentials ?? DEFAULTS['routes.cors.credentials'],
    maxAge: c.maxAge === undefined ? null : Math.floor(c.maxAge / 1000)
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml'
}

/** The media type of a page file, by its extension. */
function mediaType (file: string): string {
  return TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream'
}
