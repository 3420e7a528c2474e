/**
 * Logging: pino, JSON lines, asynchronous. What an access-log line holds is access-log.ts's.
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

/** A URL as logs may show it: the password replaced. */
export function safeUrl (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return '(unparseable url)'
  }
}
