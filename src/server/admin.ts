/**
 * The admin API: a small JSON HTTP listener, separate from the proxy listeners (loopback by default).
 *
 *   POST /cache/purge   {"url": "https://example.com/a?b"} | {"host": "example.com", "prefix": "/docs/"} | {"tag": "t"}
 *                       → 200 {"purged": n}
 *   GET  /cache/stats   → 200 {"store": "memory", "bytes": n, "hits": n, ...}
 *   GET  /healthz       → 200 ok
 *
 * With a token configured every request needs `Authorization: Bearer <token>` (401 otherwise).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Logger } from '../observability/logger.js'
import type { PurgeRequest } from '../cache/key.js'

export interface AdminTarget {
  purge (filter: PurgeRequest): Promise<number>
  cacheStats (): object | null
}

const MAX_BODY = 64 * 1024

export function createAdminServer (target: AdminTarget, token: string | null, logger: Logger): http.Server {
  return http.createServer((req, res) => {
    if (token !== null && !authorized(req, token)) {
      json(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' })
      return
    }
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' })
      res.end('ok\n')
      return
    }
    if (path === '/cache/stats') {
      if (req.method !== 'GET') return methodNotAllowed(res, 'GET')
      const stats = target.cacheStats()
      if (stats === null) json(res, 404, { error: 'no cache configured' })
      else json(res, 200, stats)
      return
    }
    if (path === '/cache/purge') {
      if (req.method !== 'POST') return methodNotAllowed(res, 'POST')
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

function authorized (req: IncomingMessage, token: string): boolean {
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
