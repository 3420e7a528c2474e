/**
 * Portico's diagnostics channels (node:diagnostics_channel), the one place observers hook in: the metrics
 * (observability/metrics.ts), and any APM tool, subscribe here. A channel without subscribers costs one property
 * read where it is published: nothing is built for it.
 *
 * | channel | message | when |
 * | --- | --- | --- |
 * | `portico:request:start` | `{ proxy, id, method, host, route, upgrade }` | a request (or upgrade handshake) was routed, before any rule or hook |
 * | `portico:request:end` | `{ proxy, record }` | an exchange ended; `record` is its access-log record (status, durationMs, upstream, upstreamMs, cache, error, …) |
 * | `portico:upstream:attempt` | `{ proxy, id, upstream }` | a pool sends the request to a node (once per attempt) |
 * | `portico:upstream:retry` | `{ proxy, id, upstream, error }` | an attempt failed and another follows |
 * | `portico:cache:result` | `{ proxy, id, cacheStatus }` | an exchange on a cached route ended; its RFC 9211 Cache-Status |
 * | `portico:tls:handshake` | `{ proxy, listener, ok, error? }` | a TLS handshake on a listener completed or failed |
 * | `portico:config:reload` | `{ proxy, ok, error?, source }` | a reload was tried (signal, file change, admin API) |
 *
 * `proxy` tells the proxies of one process apart (it is the same object for every message of one Proxy).
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import type { AccessRecord } from './access-log.js'

/** Identifies the proxy a message is about. */
export type ProxyToken = object

export interface RequestStartMessage { proxy: ProxyToken, id: string, method: string, host: string, route: string | null, upgrade: boolean }
export interface RequestEndMessage { proxy: ProxyToken, record: AccessRecord }
export interface UpstreamAttemptMessage { proxy: ProxyToken, id: string, upstream: string }
export interface CacheResultMessage { proxy: ProxyToken, id: string, cacheStatus: string }
export interface UpstreamRetryMessage { proxy: ProxyToken, id: string, upstream: string, error: string }
export interface TlsHandshakeMessage { proxy: ProxyToken, listener: string, ok: boolean, error?: string }
export interface ConfigReloadMessage { proxy: ProxyToken, ok: boolean, error?: string, source: string }

export const requestStart = diagnosticsChannel.channel('portico:request:start')
export const requestEnd = diagnosticsChannel.channel('portico:request:end')
export const upstreamAttempt = diagnosticsChannel.channel('portico:upstream:attempt')
export const upstreamRetry = diagnosticsChannel.channel('portico:upstream:retry')
export const cacheResult = diagnosticsChannel.channel('portico:cache:result')
export const tlsHandshake = diagnosticsChannel.channel('portico:tls:handshake')
export const configReload = diagnosticsChannel.channel('portico:config:reload')
