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
 *
 * With a token configured every request needs `Authorization: Bearer <token>` (401 otherwise).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Logger } from '../observability/logger.js'
import type { PurgeRequest } from '../cache/key.js'
import type { PoolSnapshot } from '../balancer/pool.js'
import type { Explanation } from './admin-views.js'

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
}

const MAX_BODY = 64 * 1024

export function createAdminServer (target: AdminTarget, token: string | null, logger: Logger): http.Server {
  return http.createServer((req, res) => {
    if (token !== null && !authorized(req, token)) {
      json(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' })
      return
    }
    const url = new URL(req.url ?? '/', 'http://admin')
    const path = url.pathname
    const method = req.method ?? 'GET'
    const get = (): boolean => {
      if (method === 'GET' || method === 'HEAD') return true
      methodNotAllowed(res, 'GET')
      return false
    }
    switch (path) {
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

/** Whether `req` presents the admin token (compared on SHA-256 digests, in constant time). */
export function authorized (req: IncomingMessage, token: string): boolean {
  const h = req.headers.authorization ?? ''
  const m = /^Bearer\s+(.+)$/i.exec(h)
  if (m === null) return false
  // Digests of equal length: the comparison takes the same time whatever the presented token's length or content.
  const a = createHash('sha256').update(m[1].trim()).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}

function readJson (req: IncomingMessage, done: (err: string | null, body?: unknown) => void): void {
  const parts: Buffer[] = []
  let size = 0
  let failed = false
  req.on('data', (c: Buffer) => {
    size += c.length
    if (size > MAX_BODY && !failed) {
      failed = true
      done('body too large')
      req.destroy()
      return
    }
    parts.push(c)
  })
  req.on('end', () => {
    if (failed) return
    try {
      done(null, JSON.parse(Buffer.concat(parts).toString('utf8')))
    } catch {
      done('body is not JSON')
    }
  })
}

function json (res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', ...extra })
  res.end(text)
}

function methodNotAllowed (res: ServerResponse, allow: string): void {
  json(res, 405, { error: 'method not allowed' }, { allow })
}
