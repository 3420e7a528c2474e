/**
 * The admin API: a small JSON HTTP listener, separate from the proxy listeners (loopback by default). docs/admin.md
 * documents every endpoint.
 *
 *   GET  /healthz            → 200 ok
 *   GET  /metrics            → Prometheus text (docs/metrics.md)
 *   GET  /config             → the running config, every default applied, secrets redacted
 *   POST /config/reload      → reads the config source again: 200 {"ok": true} | 422 {"ok": false, "error"}
 *   GET  /routes             → the compiled route table
 *   GET  /routes/explain?host=&path=&method=  → which route, rules and pool a request would get, and why
 *   GET  /pools              → every pool and node: health, in flight, ejections, counters
 *   POST /cache/purge        {"url": ...} | {"host": ..., "prefix": ...} | {"tag": ...} → 200 {"purged": n}
 *   GET  /cache/stats        → 200 {"store": "memory", "bytes": n, "hits": n, ...}
 *   GET  / (or /dashboard)   → the live dashboard (server/dashboard.ts), an HTML page polling the endpoints above
 *
 * With a token configured every request needs `Authorization: Bearer <token>` (401 otherwise), or, for reading
 * (GET and HEAD), the session cookie a browser gets by signing in: `GET /?token=…` or the sign-in form's
 * `POST /` (server/admin-session.ts).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { Logger } from '../observability/logger.js'
import type { PurgeRequest } from '../cache/key.js'
import type { PoolSnapshot } from '../balancer/pool.js'
import type { Explanation } from './admin-views.js'
import { AdminSession } from './admin-session.js'
import { dashboardPage, signInPage } from './dashboard.js'

/** What the admin API reads and drives. */
export interface AdminTarget {
  purge (filter: PurgeRequest): Promise<number>
  cacheStats (): object | null
  /** The Prometheus exposition, or null when metrics are off. */
  metricsText (): Promise<{ contentType: string, text: string } | null>
  configView (): unknown
  /** Reads the config source again and swaps it in when valid. */
  reloadFromSource (source: string): Promise<{ ok: true } | { ok: false, error: string }>
  describeRoutes (): unknown
  explain (host: string, path: string, method: string): Explanation
  pools (): PoolSnapshot[]
  /** The names automatic HTTPS manages, with issuer, expiry and next renewal (empty without tls.acme). */
  certificates (): unknown[]
}

const MAX_BODY = 64 * 1024

/** The largest sign-in form body read. */
const MAX_FORM = 4 * 1024

export function createAdminServer (target: AdminTarget, token: string | null, logger: Logger): http.Server {
  const session = token === null ? null : new AdminSession(token)
  return http.createServer((req, res) => {
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://admin')
    } catch {
      // An absolute-form target the URL parser refuses (`GET http://[ HTTP/1.1`): thrown here, it would end the process.
      json(res, 400, { error: 'bad request target' })
      return
    }
    const path = url.pathname
    const method = req.method ?? 'GET'
    const reading = method === 'GET' || method === 'HEAD'
    const dashboard = path === '/' || path === '/dashboard'
    if (session !== null) {
      if (dashboard && method === 'POST') return signInWithForm(req, res, session, path)
      if (dashboard && reading && url.searchParams.has('token')) return signIn(res, session, url.searchParams.get('token') ?? '', path)
      const access = authorized(req, session)
      if (access === null) {
        if (dashboard && reading) page(res, 401, signInPage(false))
        else json(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' })
        return
      }
      if (access === 'session' && !reading) {
        json(res, 403, { error: 'the dashboard session only reads: send Authorization: Bearer <token>' })
        return
      }
    }
    const get = (): boolean => {
      if (method === 'GET' || method === 'HEAD') return true
      methodNotAllowed(res, 'GET')
      return false
    }
    switch (path) {
      case '/':
      case '/dashboard':
        if (get()) page(res, 200, dashboardPage)
        return
      case '/healthz':
        if (!get()) return
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' })
        res.end('ok\n')
        return
      case '/metrics':
        if (!get()) return
        target.metricsText().then((m) => {
          if (m === null) {
            json(res, 404, { error: 'metrics are off (admin.metrics: false)' })
            return
          }
          res.writeHead(200, { 'content-type': m.contentType, 'content-length': String(Buffer.byteLength(m.text)), 'cache-control': 'no-store' })
          res.end(m.text)
        }, (err: unknown) => {
          logger.error({ err }, 'metrics collection failed')
          json(res, 500, { error: 'metrics collection failed' })
        })
        return
      case '/config':
        if (get()) json(res, 200, target.configView())
        return
      case '/config/reload':
        if (method !== 'POST') return methodNotAllowed(res, 'POST')
        target.reloadFromSource('admin').then((r) => json(res, r.ok ? 200 : 422, r), (err: unknown) => json(res, 500, { ok: false, error: (err as Error).message }))
        return
      case '/routes':
        if (get()) json(res, 200, target.describeRoutes())
        return
      case '/routes/explain': {
        if (!get()) return
        const host = url.searchParams.get('host')
        if (host === null || host === '') {
          json(res, 400, { error: 'expected ?host=NAME[&path=/x][&method=GET]' })
          return
        }
        json(res, 200, target.explain(host, url.searchParams.get('path') ?? '/', (url.searchParams.get('method') ?? 'GET').toUpperCase()))
        return
      }
      case '/pools':
        if (get()) json(res, 200, target.pools())
        return
      case '/certificates':
        if (get()) json(res, 200, target.certificates())
        return
      case '/cache/stats': {
        if (!get()) return
        const stats = target.cacheStats()
        if (stats === null) json(res, 404, { error: 'no cache configured' })
        else json(res, 200, stats)
        return
      }
      case '/cache/purge':
        if (method !== 'POST') return methodNotAllowed(res, 'POST')
        readJson(req, (err, body) => {
          if (err !== null) {
            json(res, 400, { error: err })
            return
          }
          const filter = purgeRequest(body)
          if (typeof filter === 'string') {
            json(res, 400, { error: filter })
            return
          }
          target.purge(filter).then((purged) => {
            logger.info({ purge: filter, purged }, 'cache purge')
            json(res, 200, { purged })
          }, (e: unknown) => {
            logger.error({ err: e, purge: filter }, 'cache purge failed')
            json(res, 503, { error: 'purge failed: cache store unavailable' })
          })
        })
        return
    }
    json(res, 404, { error: 'not found' })
  })
}

/** Validates a purge body; returns the filter or an error message. */
export function purgeRequest (body: unknown): PurgeRequest | string {
  const b = body as Record<string, unknown> | null
  if (b === null || typeof b !== 'object') return 'expected a JSON object'
  if (typeof b.url === 'string') {
    try {
      const u = new URL(b.url)
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'url must be http:// or https://'
    } catch {
      return 'url is not an absolute URL'
    }
    return { url: b.url }
  }
  if (typeof b.tag === 'string' && b.tag !== '') return { tag: b.tag }
  if (typeof b.host === 'string' && b.host !== '') {
    const prefix = b.prefix === undefined ? '/' : b.prefix
    if (typeof prefix !== 'string' || !prefix.startsWith('/')) return 'prefix must start with "/"'
    return { host: b.host, prefix }
  }
  return 'expected {"url": ...}, {"host": ..., "prefix": ...} or {"tag": ...}'
}

/**
 * Who the request is: the bearer token (anything), the session cookie (reading only), or nobody (null). The token
 * and the cookie are compared in constant time (AdminSession).
 */
function authorized (req: IncomingMessage, session: AdminSession): 'bearer' | 'session' | null {
  if (session.bearer(req)) return 'bearer'
  if (session.cookie(req)) return 'session'
  return null
}

/** A right token: a session cookie and a 303 to the page without the token in its URL. A wrong one: 401. */
function signIn (res: ServerResponse, session: AdminSession, presented: string, path: string): void {
  if (!session.tokenMatches(presented)) {
    page(res, 401, signInPage(true))
    return
  }
  res.writeHead(303, { location: path, 'set-cookie': session.setCookie(), 'content-length': '0', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
  res.end()
}

/** The sign-in form's `POST /`: `token=…`, form-encoded. */
function signInWithForm (req: IncomingMessage, res: ServerResponse, session: AdminSession, path: string): void {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
    req.resume()
    json(res, 415, { error: 'expected a form (application/x-www-form-urlencoded) with token=…' })
    return
  }
  readBody(req, MAX_FORM, (err, body) => {
    if (err !== null) {
      json(res, 413, { error: err })
      return
    }
    signIn(res, session, new URLSearchParams(body.toString('utf8')).get('token') ?? '', path)
  })
}

function readBody (req: IncomingMessage, limit: number, done: (err: string | null, body: Buffer) => void): void {
  const parts: Buffer[] = []
  let size = 0
  let failed = false
  req.on('data', (c: Buffer) => {
    size += c.length
    if (size > limit && !failed) {
      failed = true
      done('body too large', Buffer.alloc(0))
      req.destroy()
      return
    }
    if (!failed) parts.push(c)
  })
  req.on('end', () => {
    if (!failed) done(null, Buffer.concat(parts))
  })
}

function readJson (req: IncomingMessage, done: (err: string | null, body?: unknown) => void): void {
  readBody(req, MAX_BODY, (err, body) => {
    if (err !== null) {
      done(err)
      return
    }
    try {
      done(null, JSON.parse(body.toString('utf8')))
    } catch {
      done('body is not JSON')
    }
  })
}

/** A JSON answer of the admin API (also the cluster primary's). */
export function json (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', ...extra })
  res.end(text)
}

function page (res: ServerResponse, status: number, p: { body: string, headers: Record<string, string> }): void {
  res.writeHead(status, p.headers)
  res.end(p.body)
}

function methodNotAllowed (res: ServerResponse, allow: string): void {
  json(res, 405, { error: 'method not allowed' }, { allow })
}
