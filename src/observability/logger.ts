/**
 * Logging: pino, JSON lines. The access log is one line per exchange at level info with stable camelCase fields
 * (documented in README): reqId, method, host, path, route, upstream, status, bytes, durationMs, and error
 * (a PORTICO_ERR_* code) when the exchange failed.
 */
import pino, { type Logger } from 'pino'

export type { Logger }

/** Options for the process logger. */
export interface LoggerOptions {
  level: string
  /** Where lines go: a file descriptor (default 1, stdout). */
  fd?: number
  /** Write synchronously (tests, CLI one-shots). Default false: buffered, flushed on exit. */
  sync?: boolean
}

/** Creates the process logger. */
export function createLogger (options: LoggerOptions): Logger {
  // Asynchronous writes: lines written while a write is in flight are batched into the next one, so a busy
  // proxy makes few syscalls and a quiet one still shows each line at once.
  const dest = pino.destination({ dest: options.fd ?? 1, sync: options.sync ?? false })
  return pino({ level: options.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, dest)
}

/** A logger that drops everything (embedding without logs). */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}

/** The fields of one access-log line. */
export interface AccessRecord {
  reqId: string
  remoteAddr: string | undefined
  method: string
  host: string
  path: string
  route: string | null
  upstream: string | null
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
}
