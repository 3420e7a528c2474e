/**
 * The rate-limit store shared by every Portico instance on one Redis (rate-limit.ts has the algorithm and its
 * semantics): one Lua script decides atomically on Redis's clock; an outage fails open and logs once. Its own module
 * so that ioredis is loaded only by a config that uses it.
 */
import { Redis } from 'ioredis'
import { safeUrl } from '../observability/logger.js'
import { EPS, decide, intervals, type RateDecision, type RateLimitSpec, type RateStore } from './rate-limit.js'

/**
 * KEYS[1]: the bucket. ARGV: T, tau, EPS (ms). Returns { 1 | 0 (admitted), TAT − now after the decision (ms, as a
 * string: a Lua number in a reply would be truncated to an integer) }.
 */
const LUA_TAKE = `
-- Redis < 5 replicates a script by its effects only when asked, and refuses a write after TIME otherwise.
if redis.replicate_commands ~= nil then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local eps = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then tat = now end
if tat - now > tau + eps then
  return { 0, string.format('%.3f', tat - now) }
end
tat = tat + T
-- Expires when the bucket is full again: an idle key holds nothing.
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', string.format('%.0f', math.max(1, math.ceil(tat - now))))
return { 1, string.format('%.3f', tat - now) }
`

/** Where {@link RedisRateStore} logs its outages. */
export interface RateStoreLogger {
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
}

/** Options of {@link RedisRateStore}. */
export interface RedisRateStoreOptions {
  /** redis://[user:password@]host:port[/db] (or rediss:// for TLS). */
  url: string
  /** Prepended to every key. */
  prefix: string
  /** ms a take may wait for Redis before it fails open. */
  commandTimeout: number
  logger: RateStoreLogger
}

/** The script as ioredis's `defineCommand` adds it (EVALSHA, EVAL when Redis does not know the script). */
interface TakeCommand {
  porticoRateTake (key: string, T: string, tau: string, eps: string): Promise<[number, string]>
}

/** The store shared by every Portico instance on one Redis. take() never rejects for an outage: it fails open. */
export class RedisRateStore implements RateStore {
  readonly #client: Redis
  readonly #prefix: string
  readonly #logger: RateStoreLogger
  readonly #url: string
  /** Between a failure and the next success (or reconnect): one warning per outage. */
  #down = false
  /** Connected once: failures before that, while the first connect is under way, are not an outage yet. */
  #everReady = false
  #closed = false

  constructor (options: RedisRateStoreOptions) {
    this.#prefix = options.prefix
    this.#logger = options.logger
    this.#url = safeUrl(options.url)
    this.#client = new Redis(options.url, {
      lazyConnect: false,
      // Fail fast: no queueing while disconnected, no retries, no command waits longer than commandTimeout.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.commandTimeout,
      connectTimeout: Math.max(2000, options.commandTimeout * 2),
      // Reconnect forever, backing off to one attempt every 2 s.
      retryStrategy: (times) => Math.min(200 * times, 2000),
      connectionName: 'portico-rate-limit'
    })
    this.#client.defineCommand('porticoRateTake', { numberOfKeys: 1, lua: LUA_TAKE })
    this.#client.on('error', (err: Error) => this.#failed(err.message))
    this.#client.on('close', () => { if (!this.#closed) this.#failed('connection closed') })
    this.#client.on('ready', () => {
      this.#everReady = true
      this.#recovered()
    })
  }

  /** Connected: takes go to Redis. When false they fail open at once. */
  get available (): boolean {
    return this.#client.status === 'ready'
  }

  /**
   * Resolves once connected; rejects after `timeoutMs`. Not needed for correctness (takes before that fail open),
   * but lets startup and tests begin with a working store.
   */
  async whenReady (timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.available) {
      if (this.#closed) throw new Error('redis rate limit store is closed')
      if (Date.now() >= deadline) throw new Error(`redis rate limit store unavailable (connection ${this.#client.status})`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  async take (key: string, spec: RateLimitSpec): Promise<RateDecision> {
    const { T, tau } = intervals(spec)
    let reply: [number, string]
    try {
      reply = await (this.#client as unknown as TakeCommand).porticoRateTake(this.#prefix + key, String(T), String(tau), String(EPS))
    } catch (err) {
      if (this.#everReady || this.#client.status === 'end') this.#failed((err as Error).message)
      return { allowed: true, limit: spec.rate + spec.burst, remaining: spec.rate + spec.burst, resetMs: 0, retryAfterMs: 0 }
    }
    // A timeout is an outage without a reconnect: the first answer after it ends the outage.
    this.#recovered()
    return decide(spec, T, tau, Number(reply[0]) === 1, Number(reply[1]))
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#client.status === 'ready') {
      try {
        await this.#client.quit()
        return
      } catch { /* disconnect below */ }
    }
    this.#client.disconnect()
  }

  #failed (reason: string): void {
    if (this.#down || this.#closed) return
    this.#down = true
    this.#logger.warn({ store: 'redis', url: this.#url, err: reason }, 'redis rate limit store unavailable: admitting requests unlimited until it is back')
  }

  #recovered (): void {
    if (!this.#down) return
    this.#down = false
    this.#logger.info({ store: 'redis', url: this.#url }, 'redis rate limit store available again: limits apply')
  }
}

