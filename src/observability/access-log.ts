/**
 * The access log: one line per exchange, at level info, with stable camelCase fields (docs/config.md, `log.access`):
 * reqId, remoteAddr, method, host, path, route, upstream, attempts (and failedAttempts after retries), status, bytes,
 * durationMs, and `error` (a PORTICO_ERR_*
 * code) on every answer Portico made itself. The same record goes to `onResponse` hooks, whether or not the log is
 * on. Both exchange kinds (exchange.ts, upgrade.ts) build their record here and end here.
 */
import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Logger } from './logger.js'
import { runOnResponse, type CompiledHooks, type HookContext } from '../hooks.js'
import { requestEnd } from './channels.js'

/** The fields of one access-log line. */
export interface AccessRecord {
  reqId: string
  /** The client's address (behind trusted proxies, the one they reported; see HookContext.clientAddress). */
  remoteAddr: string | undefined
  /** The socket's peer, when it differs from remoteAddr (a trusted proxy). */
  peerAddr?: string
  method: string
  host: string
  path: string
  route: string | null
  upstream: string | null
  /** W3C Trace Context (with `tracing` on): the trace, and the span id Portico gave the hop to the node. */
  traceId?: string
  spanId?: string
  /** Milliseconds from the last attempt's dispatch to the node's response head, when a node answered. */
  upstreamMs?: number
  /** Attempts made upstream (the pool's retries included), when a node was tried. */
  attempts?: number
  /** The attempts that failed and were retried: each node and its error code (or "status 503"). */
  failedAttempts?: FailedAttempt[]
  status: number
  bytes: number
  durationMs: number
  error?: string
  /** On TLS connections: "TLSv1.3", the cipher name and the SNI name the client sent. */
  tlsProtocol?: string
  tlsCipher?: string
  sni?: string
  /** On cached routes: the Cache-Status (RFC 9211) the cache chose, e.g. "Portico; hit; ttl=42". */
  cache?: string
  /** On upgrades (WebSocket tunnels): the protocol asked for, and the bytes the client sent through the tunnel. */
  upgrade?: string
  bytesIn?: number
}

/** One attempt that failed and was retried. */
export interface FailedAttempt { upstream: string, error: string }

/** Where records go. */
export interface AccessLogSink {
  logger: Logger
  accessLog: boolean
  /** With `log.format: combined`, where each access line goes (instead of the logger). */
  accessLine?: ((line: string) => void) | null
}

/** Whether an exchange's end needs a record at all (the log is on, an onResponse hook or a channel subscriber wants it). */
export function wantsRecord (sink: AccessLogSink, hooks: CompiledHooks | null): boolean {
  return sink.accessLog || (hooks !== null && hooks.onResponse.length > 0) || requestEnd.hasSubscribers
}

/** The record of an exchange that is over. `start` is its `performance.now()` at arrival. */
export function accessRecord (ctx: HookContext, upstream: string | null, status: number, bytes: number, start: number, error: string | undefined, failed: FailedAttempt[] | null = null): AccessRecord {
  const req: IncomingMessage = ctx.req
  const record: AccessRecord = {
    reqId: ctx.id,
    remoteAddr: ctx.clientAddress,
    method: req.method ?? '',
    host: ctx.host,
    path: req.url ?? '',
    route: ctx.route,
    upstream,
    status,
    bytes,
    durationMs: Math.round((performance.now() - start) * 1000) / 1000
  }
  if (ctx.clientAddress !== req.socket?.remoteAddress) record.peerAddr = req.socket?.remoteAddress
  if (upstream !== null) record.attempts = failed === null ? 1 : failed.length + 1
  if (failed !== null) record.failedAttempts = failed
  if (error !== undefined) record.error = error
  return record
}

/** Writes the line (when the access log is on), hands the record to onResponse hooks and to `portico:request:end`. */
export function endExchange (sink: AccessLogSink, hooks: CompiledHooks | null, ctx: HookContext, record: AccessRecord): void {
  if (sink.accessLog) {
    if (sink.accessLine != null) sink.accessLine(combinedLine(record, ctx.req))
    else sink.logger.info(record)
  }
  if (hooks !== null) runOnResponse(hooks, ctx, record, sink.logger)
  if (requestEnd.hasSubscribers) requestEnd.publish({ proxy: sink, record })
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** nginx's escaping of logged values: `"`, `\`, controls and non-ASCII bytes as \xHH. */
function escape (v: string): string {
  let out = ''
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    out += c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x7f ? `\\x${(c & 0xff).toString(16).toUpperCase().padStart(2, '0')}` : v[i]
  }
  return out
}

/** `10/Oct/2000:13:55:36 +0000` (UTC). */
function clfTime (d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
}

/**
 * The Apache/nginx "combined" line, then the request id, the PORTICO_ERR_* code of an answer Portico made itself
 * (or "-") and the duration in seconds:
 * `203.0.113.9 - - [05/Dec/2026:11:00:00 +0000] "GET /a?b HTTP/1.1" 200 1024 "-" "curl/8.5.0" "r1" "-" 0.002`.
 */
export function combinedLine (r: AccessRecord, req: IncomingMessage): string {
  const h = req.headers
  const referer = typeof h.referer === 'string' ? escape(h.referer) : '-'
  const agent = typeof h['user-agent'] === 'string' ? escape(h['user-agent']) : '-'
  return `${r.remoteAddr ?? '-'} - - [${clfTime(new Date())}] "${escape(r.method)} ${escape(r.path)} HTTP/${req.httpVersion}" ${r.status} ${r.bytes} "${referer}" "${agent}" "${r.reqId}" "${r.error ?? '-'}" ${(r.durationMs / 1000).toFixed(3)}\n`
}
