/**
 * What the traffic rules of every route share and keep across reloads, owned by the Proxy and closed with it: the
 * rate-limit stores (one memory store per route, so a reload does not hand every client a fresh bucket; one Redis
 * connection per URL and prefix), the in-flight counters, and the connection pool forwardAuth asks through.
 */
import type { Dispatcher } from 'undici'
import { Agent } from '../upstream/undici.js'
import type { Logger } from '../observability/logger.js'
import { InFlightLimiter, MemoryRateStore, type RateDecision, type RateLimitSpec, type RateStore } from './rate-limit.js'

export class RuleResources {
  readonly #logger: Logger
  readonly #stores = new Map<string, RateStore>()
  readonly #inFlight = new Map<string, InFlightLimiter>()
  #agent: Agent | null = null

  constructor (logger: Logger) {
    this.#logger = logger
  }

  /** The memory store of the route `name`. */
  memoryStore (name: string): RateStore {
    const key = `memory ${name}`
    let s = this.#stores.get(key)
    if (s === undefined) {
      s = new MemoryRateStore()
      this.#stores.set(key, s)
    }
    return s
  }

  /** The Redis store for `url` and `prefix`, shared by every route that names them. */
  redisStore (url: string, prefix: string, commandTimeout: number): RateStore {
    const key = `redis ${url} ${prefix}`
    let s = this.#stores.get(key)
    if (s === undefined) {
      s = new DeferredRedisStore(import('./rate-limit-redis.js').then(({ RedisRateStore }) => new RedisRateStore({ url, prefix, commandTimeout, logger: this.#logger })))
      this.#stores.set(key, s)
    }
    return s
  }

  /** The in-flight counter of the route `name` with limit `max`. */
  inFlight (name: string, max: number): InFlightLimiter {
    const key = `${name} ${max}`
    let l = this.#inFlight.get(key)
    if (l === undefined) {
      l = new InFlightLimiter(max)
      this.#inFlight.set(key, l)
    }
    return l
  }

  /** The pool forwardAuth requests go through. */
  get authDispatcher (): Dispatcher {
    this.#agent ??= new Agent({ keepAliveTimeout: 4000, connections: 64 })
    return this.#agent
  }

  async close (): Promise<void> {
    const closing: Promise<void>[] = [...this.#stores.values()].map(async (s) => await s.close())
    if (this.#agent !== null) closing.push(this.#agent.close())
    this.#stores.clear()
    await Promise.allSettled(closing)
  }
}

/** The Redis store once its module (and ioredis) loaded: a config without Redis rate limits never loads them. */
class DeferredRedisStore implements RateStore {
  readonly #store: Promise<RateStore>

  constructor (store: Promise<RateStore>) {
    this.#store = store
  }

  async take (key: string, spec: RateLimitSpec): Promise<RateDecision> {
    return await (await this.#store).take(key, spec)
  }

  async close (): Promise<void> {
    await (await this.#store).close()
  }
}
