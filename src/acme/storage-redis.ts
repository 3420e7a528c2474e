/**
 * Automatic HTTPS state in Redis (`tls.acme.storage.redis`), shared by every instance on it (Caddy's clustering
 * model): the account key, each name's certificate and key, the pending HTTP-01 answers (a CA's request may reach
 * any instance), and a lock per name taken with SET NX PX and a random token, released only by its holder, so one
 * instance orders each name and a lock left by a crashed instance expires. Loaded only for a config that uses it.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { safeUrl } from '../observability/logger.js'
import { parseStored, type AcmeStorage, type StoredCertificate } from './storage.js'

/** Deletes the lock only if it still holds this holder's token. */
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"

export class AcmeRedisStorage implements AcmeStorage {
  readonly where: string
  readonly shared = true
  readonly #client: Redis
  readonly #prefix: string

  constructor (url: string, prefix: string) {
    this.#prefix = prefix
    this.where = `${safeUrl(url)} ${prefix}`
    this.#client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2, enableOfflineQueue: true })
    // Errors surface in the commands (and are retried by the manager); the client reconnects by itself.
    this.#client.on('error', () => {})
  }

  async accountKey (): Promise<string | null> {
    return await this.#client.get(`${this.#prefix}account-key`)
  }

  async saveAccountKey (pem: string): Promise<void> {
    // Two instances starting at once: the first key stays, and both use it.
    await this.#client.set(`${this.#prefix}account-key`, pem, 'NX')
  }

  async certificate (name: string): Promise<StoredCertificate | null> {
    const [cert, key] = await this.#client.hmget(`${this.#prefix}certificate:${name}`, 'cert', 'key')
    return cert === null || key === null ? null : parseStored(cert, key)
  }

  async saveCertificate (name: string, cert: string, key: string): Promise<void> {
    await this.#client.hset(`${this.#prefix}certificate:${name}`, 'cert', cert, 'key', key)
  }

  async lock (name: string, ttlMs: number): Promise<(() => Promise<void>) | null> {
    const key = `${this.#prefix}lock:${name}`
    const token = randomBytes(12).toString('hex')
    const ok = await this.#client.set(key, token, 'PX', ttlMs, 'NX')
    if (ok !== 'OK') return null
    return async () => { await this.#client.eval(RELEASE, 1, key, token) }
  }

  async setChallenge (token: string, keyAuthorization: string, ttlMs: number): Promise<void> {
    await this.#client.set(`${this.#prefix}challenge:${token}`, keyAuthorization, 'PX', ttlMs)
  }

  async challenge (token: string): Promise<string | null> {
    return await this.#client.get(`${this.#prefix}challenge:${token}`)
  }

  async deleteChallenge (token: string): Promise<void> {
    await this.#client.del(`${this.#prefix}challenge:${token}`)
  }

  async close (): Promise<void> {
    this.#client.disconnect()
  }
}
