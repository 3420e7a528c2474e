/**
 * A CacheStore shared by every Portico instance on one Redis (ioredis). Bodies are streamed in chunks, so a large
 * response is never held whole in memory on either side.
 *
 * Key layout (`P` is the prefix, default "portico:"):
 *
 *   P m:{primary key}  hash   field = variant ("" without Vary) → StoredMeta as JSON. All variants of a URL come
 *                             back with one HGETALL. PEXPIREAT = the latest `expires` among its variants.
 *   P b:{bodyId}       list   the committed body, in chunks of `chunkSize` bytes (the last one shorter).
 *                             PEXPIREAT = its meta's `expires`. An empty body has no list.
 *   P w:{writer id}    list   a body being written: RPUSHed chunk by chunk as the response arrives, with a 10 min
 *                             TTL refreshed on every push (a writer that dies leaves nothing for long). Commit
 *                             RENAMEs it to P b:{bodyId}; abort DELetes it.
 *   P t:{tag}          set    primary keys with a variant carrying the tag (Surrogate-Key / Cache-Tag).
 *   P h:{host}         set    primary keys stored for the host. Both set kinds live as long as their longest
 *                             entry; members whose hash is gone are dropped by the next purge that meets them.
 *   P purge            channel  every purge and delete, as JSON `{ origin, filter }`, for the other instances.
 *
 * Writes that must be atomic run as Lua scripts: commit (check the chunk count, RENAME, HSET, expiries, sets,
 * retiring the replaced body and expired siblings), update (304: new head, same body) and the per-key purge
 * (delete the matching variants and their bodies). A purge by tag or host walks its set with SSCAN and runs the
 * per-key script on each member, so Redis is never blocked for a whole purge. A replaced body is not deleted at
 * once but given 30 s, so a response streaming it finishes; a purged or deleted body is deleted at once.
 * The scripts name keys they build from the prefix (bodies, sets): fine for a single Redis, not for Cluster.
 *
 * Failure: the client runs without an offline queue and with a command timeout, so while Redis is down or
 * unresponsive every call fails within `commandTimeout` (most at once) instead of waiting; the cache then
 * bypasses itself. The client reconnects forever with a capped backoff, so the store comes back with Redis.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { BodyWriter, CacheStore, PurgeFilter, StoredMeta, StoredResponse } from './store.js'
import { LUA_COMMIT, LUA_PURGE_KEY, LUA_UPDATE, type Scripts } from './redis-scripts.js'
import { safeUrl } from '../observability/logger.js'

export interface RedisStoreLogger {
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
}

export interface RedisStoreOptions {
  /** redis://[user:password@]host:port[/db] (or rediss:// for TLS). */
  url: string
  /** Prepended to every key and the pub/sub channel. Default "portico:". */
  prefix?: string
  /** Bytes per stored body chunk (one list element). Default 64 KiB. */
  chunkSize?: number
  /** Largest single response body. */
  maxObjectSize: number
  /** Milliseconds a Redis command may take before it fails. Default 1000. */
  commandTimeout?: number
  logger?: RedisStoreLogger
}

/** Thrown (or rejected with) by every method while Redis is not connected. */
export class RedisUnavailableError extends Error {
  constructor (status: string) {
    super(`redis cache store unavailable (connection ${status})`)
    this.name = 'RedisUnavailableError'
  }
}

/** TTL of a body being written, refreshed by every push. */
const PENDING_TTL_MS = 10 * 60_000
/** How long a replaced body stays readable for responses already streaming it. */
const REPLACED_GRACE_MS = 30_000
/** Chunks per LRANGE when reading a body. */
const READ_BATCH = 16
/** Primary keys per SSCAN step of a purge. */
const SCAN_COUNT = 200

function isFilter (f: unknown): f is PurgeFilter {
  if (typeof f !== 'object' || f === null) return false
  const o = f as Record<string, unknown>
  return typeof o.key === 'string' || typeof o.tag === 'string' || (typeof o.host === 'string' && typeof o.pathPrefix === 'string')
}

export class RedisStore implements CacheStore {
  readonly name = 'redis'
  readonly #client: Redis
  readonly #sub: Redis
  readonly #scripts: Scripts
  readonly #prefix: string
  readonly #chunkSize: number
  readonly #maxObjectSize: number
  readonly #logger: RedisStoreLogger | undefined
  /** Keys whose corruption was logged already. */
  readonly #reported = new Set<string>()
  /** Corrupt entries met (each is a miss). */
  readonly #stats = { corrupt: 0 }
  readonly #url: string
  /** Tags this instance's own pub/sub messages, which it has already reported to its listeners. */
  readonly #id = randomBytes(8).toString('hex')
  /** Writers opened by this instance: with #id, names a body being written without a random draw per miss. */
  #writers = 0
  readonly #listeners: ((filter: PurgeFilter) => void)[] = []
  #down = false
  #subscribed = false
  #closed = false

  constructor (opts: RedisStoreOptions) {
    this.#prefix = opts.prefix ?? 'portico:'
    this.#chunkSize = Math.max(1, opts.chunkSize ?? 64 * 1024)
    this.#maxObjectSize = opts.maxObjectSize
    this.#logger = opts.logger
    this.#url = safeUrl(opts.url)
    const commandTimeout = opts.commandTimeout ?? 1000
    this.#client = new Redis(opts.url, {
      lazyConnect: false,
      // Fail fast: no queueing while disconnected, in-flight commands fail when the connection drops, none waits
      // longer than commandTimeout.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout,
      connectTimeout: Math.max(2000, commandTimeout * 2),
      // Reconnect forever, backing off to one attempt every 2 s.
      retryStrategy: (times) => Math.min(200 * times, 2000),
      connectionName: 'portico-cache'
    })
    this.#client.defineCommand('porticoCommit', { lua: LUA_COMMIT })
    this.#client.defineCommand('porticoUpdate', { lua: LUA_UPDATE })
    this.#client.defineCommand('porticoPurgeKey', { lua: LUA_PURGE_KEY })
    this.#scripts = this.#client as unknown as Scripts
    this.#client.on('error', (err: Error) => this.#lost(err.message))
    this.#client.on('close', () => { if (!this.#closed) this.#lost('connection closed') })
    this.#client.on('ready', () => {
      if (this.#down) this.#logger?.info({ store: 'redis', url: this.#url }, 'redis cache store reconnected')
      this.#down = false
    })

    // Purges of the other instances arrive on a second connection (a subscribed connection runs nothing else).
    // It subscribes on every (re)connect itself, so a subscription that failed at startup is not lost.
    this.#sub = this.#client.duplicate({ autoResubscribe: false, connectionName: 'portico-cache-sub', commandTimeout: undefined })
    this.#sub.on('error', () => { /* reported through the main connection */ })
    this.#sub.on('close', () => { this.#subscribed = false })
    this.#sub.on('ready', () => {
      this.#sub.subscribe(this.#channel).then(() => { this.#subscribed = true }, () => { /* retried on the next ready */ })
    })
    this.#sub.on('message', (channel: string, message: string) => this.#message(channel, message))
  }

  /** Connected: calls go to Redis. When false every call fails at once. */
  get available (): boolean {
    return this.#client.status === 'ready'
  }

  /**
   * Resolves once both connections are up and the purge channel is subscribed; rejects after `timeoutMs`. Not
   * needed for correctness (calls before that fail fast and the cache bypasses itself), but lets startup and
   * tests begin with a working store.
   */
  async whenReady (timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!(this.available && this.#subscribed)) {
      if (this.#closed) throw new Error('redis cache store is closed')
      if (Date.now() >= deadline) throw new RedisUnavailableError(this.#client.status)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  onPurge (listener: (filter: PurgeFilter) => void): void {
    this.#listeners.push(listener)
  }

  async get (key: string): Promise<StoredResponse[]> {
    this.#check()
    const hash = this.#metaKey(key)
    let fields: Record<string, string>
    try {
      fields = await this.#client.hgetall(hash)
    } catch (err) {
      // Something else lives under the key (another tenant's data, a hand edit): a miss, and the key is cleared.
      if (!String((err as Error).message).startsWith('WRONGTYPE')) throw err
      this.#corrupt(key, 'the entry is not a hash', [hash])
      return []
    }
    const now = Date.now()
    const out: StoredResponse[] = []
    for (const [variant, json] of Object.entries(fields)) {
      const meta = parseMeta(json)
      if (meta === null) {
        this.#corrupt(key, 'a stored head is not valid', [], [hash, variant])
        continue
      }
      if (meta.expires > now) out.push({ meta, chunks: null })
    }
    return out
  }

  /**
   * The stored body, batch by batch. Its first read also takes the list's length: a body with a chunk missing (or
   * one that is gone) is found before a byte is served, so the cache forwards the request instead of answering with
   * a short body, and the broken entry is removed.
   */
  async * body (meta: StoredMeta): AsyncIterable<Buffer> {
    this.#check()
    const key = this.#bodyKey(meta.bodyId)
    let index = 0
    let bytes = 0
    while (bytes < meta.size) {
      let batch: Buffer[]
      if (index === 0) {
        const [[lenErr, length], [readErr, first]] = (await this.#client.pipeline().llen(key).lrangeBuffer(key, 0, READ_BATCH - 1).exec()) as [[Error | null, number], [Error | null, Buffer[]]]
        if (lenErr !== null || readErr !== null) throw lenErr ?? readErr
        batch = first
        const whole = length <= READ_BATCH ? first.reduce((n, c) => n + c.length, 0) : -1
        if ((meta.chunks !== undefined && length !== meta.chunks) || (whole !== -1 && whole !== meta.size)) {
          this.#corrupt(meta.key, `stored body has ${length} chunks${whole === -1 ? '' : ` (${whole} bytes)`}, its head says ${meta.chunks ?? '?'} (${meta.size} bytes)`, [key], [this.#metaKey(meta.key), meta.variant])
          throw new Error(`stored body is gone or short (${length} of ${meta.chunks ?? '?'} chunks)`)
        }
      } else {
        batch = await this.#client.lrangeBuffer(key, index, index + READ_BATCH - 1)
      }
      if (batch.length === 0) throw new Error(`stored body is gone or short (${bytes} of ${meta.size} bytes)`)
      for (const chunk of batch) {
        bytes += chunk.length
        if (bytes > meta.size) throw new Error(`stored body is longer than its head says (${meta.size} bytes)`)
        yield chunk
      }
      index += batch.length
    }
  }

  /** A corrupt entry: logged once per key (a bounded memory of keys), and removed so the next request refills it. */
  #corrupt (key: string, reason: string, keys: string[], field?: [string, string]): void {
    if (!this.#reported.has(key)) {
      if (this.#reported.size >= 1000) this.#reported.clear()
      this.#reported.add(key)
      this.#logger?.warn({ store: 'redis', key, reason }, 'redis cache store: corrupt entry treated as a miss and removed')
    }
    this.#stats.corrupt++
    if (!this.available) return
    const m = this.#client.multi()
    for (const k of keys) m.del(k)
    if (field !== undefined) m.hdel(field[0], field[1])
    m.exec().catch(() => { /* it expires on its own */ })
  }

  open (key: string, size: number | null): BodyWriter | null {
    if (size !== null && size > this.#maxObjectSize) return null
    this.#check()
    this.#writers = (this.#writers + 1) % Number.MAX_SAFE_INTEGER
    const list = `${this.#prefix}w:${this.#id}:${this.#writers.toString(36)}`
    return new RedisBodyWriter({
      chunkSize: this.#chunkSize,
      maxObjectSize: this.#maxObjectSize,
      push: async (chunks) => {
        this.#check()
        const results = await this.#client.multi().rpush(list, ...chunks).pexpire(list, PENDING_TTL_MS).exec()
        for (const [err] of results ?? []) if (err !== null) throw err
      },
      discard: () => {
        if (this.available) this.#client.del(list).catch(() => { /* it expires on its own */ })
      },
      commit: async (chunks, meta) => {
        this.#check()
        const full = { ...meta, key, chunks }
        const [hash, body, host, ...tags] = this.#entryKeys(full)
        const ok = await this.#scripts.porticoCommit(4 + tags.length, hash, list, body, host, ...tags,
          full.variant, JSON.stringify(full), Math.ceil(full.expires), Date.now(), chunks, key, `${this.#prefix}b:`, full.bodyId, REPLACED_GRACE_MS)
        if (ok !== 1) throw new Error('redis cache store: body incomplete at commit (chunks lost while writing)')
      }
    })
  }

  async update (meta: StoredMeta): Promise<void> {
    this.#check()
    const keys = this.#entryKeys(meta)
    await this.#scripts.porticoUpdate(keys.length, ...keys, meta.variant, JSON.stringify(meta), Math.ceil(meta.expires), Date.now(), meta.bodyId, meta.key)
  }

  async delete (key: string): Promise<number> {
    this.#check()
    const removed = await this.#purgeKey(key, null, 'all', '', '')
    await this.#announce({ key })
    return removed
  }

  async purge (filter: PurgeFilter): Promise<number> {
    this.#check()
    let removed = 0
    if ('key' in filter) {
      removed = await this.#purgeKey(filter.key, null, 'all', '', '')
    } else if ('tag' in filter) {
      removed = await this.#purgeSet(this.#tagKey(filter.tag), 'tag', filter.tag, '')
    } else {
      removed = await this.#purgeSet(this.#hostKey(filter.host), 'path', filter.pathPrefix, filter.host)
    }
    await this.#announce(filter)
    return removed
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([this.#client, this.#sub].map(async (c) => {
      if (c.status === 'ready') {
        try {
          await c.quit()
          return
        } catch { /* disconnect below */ }
      }
      c.disconnect()
    }))
  }

  // ---- internals

  get #channel (): string { return `${this.#prefix}purge` }
  #metaKey (key: string): string { return `${this.#prefix}m:${key}` }
  #bodyKey (bodyId: string): string { return `${this.#prefix}b:${bodyId}` }
  #tagKey (tag: string): string { return `${this.#prefix}t:${tag}` }
  #hostKey (host: string): string { return `${this.#prefix}h:${host}` }

  /** The hash, body, host set and tag sets of an entry: what commit and update write. */
  #entryKeys (meta: StoredMeta): string[] {
    return [this.#metaKey(meta.key), this.#bodyKey(meta.bodyId), this.#hostKey(meta.host), ...[...new Set(meta.tags)].map((t) => this.#tagKey(t))]
  }

  /** Fails at once while disconnected (rather than waiting for ioredis to refuse the command). */
  #check (): void {
    if (this.#closed) throw new Error('redis cache store is closed')
    if (this.#client.status !== 'ready') throw new RedisUnavailableError(this.#client.status)
  }

  #purgeKey (key: string, set: string | null, mode: 'all' | 'tag' | 'path', arg: string, host: string): Promise<number> {
    const keys = set === null ? [this.#metaKey(key)] : [this.#metaKey(key), set]
    return this.#scripts.porticoPurgeKey(keys.length, ...keys, mode, arg, host, `${this.#prefix}b:`, Date.now(), key)
  }

  async #purgeSet (set: string, mode: 'tag' | 'path', arg: string, host: string): Promise<number> {
    let removed = 0
    let cursor = '0'
    do {
      const [next, members] = await this.#client.sscan(set, cursor, 'COUNT', SCAN_COUNT)
      cursor = next
      const counts = await Promise.all(members.map((key) => this.#purgeKey(key, set, mode, arg, host)))
      for (const n of counts) removed += n
    } while (cursor !== '0')
    return removed
  }

  /** Reports a purge to this instance's listeners, then to the other instances. */
  async #announce (filter: PurgeFilter): Promise<void> {
    this.#notify(filter)
    try {
      await this.#client.publish(this.#channel, JSON.stringify({ origin: this.#id, filter }))
    } catch (err) {
      this.#logger?.warn({ store: 'redis', err: (err as Error).message, filter }, 'redis cache store: purge not published to other instances')
    }
  }

  #message (channel: string, message: string): void {
    if (channel !== this.#channel) return
    let parsed: { origin?: unknown, filter?: unknown }
    try {
      parsed = JSON.parse(message) as { origin?: unknown, filter?: unknown }
    } catch {
      return
    }
    if (parsed.origin === this.#id || !isFilter(parsed.filter)) return
    this.#notify(parsed.filter)
  }

  #notify (filter: PurgeFilter): void {
    for (const l of this.#listeners) {
      try {
        l(filter)
      } catch { /* a listener's failure is its own */ }
    }
  }

  /** The connection failed: warn once per outage. */
  #lost (reason: string): void {
    if (this.#down || this.#closed) return
    this.#down = true
    this.#logger?.warn({ store: 'redis', url: this.#url, err: reason }, 'redis cache store unavailable: bypassing the cache until it is back')
  }
}

/** What a writer may do with its store: push to, drop and commit its own list. */
interface WriterPort {
  chunkSize: number
  maxObjectSize: number
  /** RPUSHes chunks to the writer's list (and refreshes its TTL). */
  push (chunks: Buffer[]): Promise<void>
  /** Deletes the writer's list; never fails (a leftover expires). */
  discard (): void
  /** Makes the list the body of `meta`, if it holds `chunks` elements. */
  commit (chunks: number, meta: StoredMeta): Promise<void>
}

/**
 * Buffers written chunks up to `chunkSize` and RPUSHes each full chunk as it is complete, so the body flows into
 * Redis as it arrives. A push that fails ends the writer: later chunks are dropped and commit rejects.
 */
class RedisBodyWriter implements BodyWriter {
  readonly #port: WriterPort
  #pending: Buffer[] = []
  #pendingBytes = 0
  #bytes = 0
  #chunks = 0
  #dead = false
  #error: Error | null = null
  readonly #inflight = new Set<Promise<void>>()

  constructor (port: WriterPort) {
    this.#port = port
  }

  write (chunk: Buffer): void {
    if (this.#dead || this.#error !== null || chunk.length === 0) return
    this.#bytes += chunk.length
    if (this.#bytes > this.#port.maxObjectSize) {
      this.abort()
      return
    }
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.length
    if (this.#pendingBytes >= this.#port.chunkSize) this.#flush(false)
  }

  async commit (meta: StoredMeta): Promise<void> {
    if (this.#dead) return
    this.#flush(true)
    this.#dead = true
    await Promise.all(this.#inflight)
    if (this.#error !== null) {
      this.#port.discard()
      throw this.#error
    }
    if (meta.expires <= Date.now()) {
      this.#port.discard()
      return
    }
    try {
      await this.#port.commit(this.#chunks, { ...meta, size: this.#bytes })
    } catch (err) {
      this.#port.discard()
      throw err
    }
  }

  abort (): void {
    if (this.#dead) return
    this.#dead = true
    this.#pending = []
    this.#pendingBytes = 0
    // Sent after any push still in flight (one connection, in order), so nothing is left behind.
    if (this.#chunks > 0) this.#port.discard()
  }

  /** Pushes every complete chunk (and, at the end, the short last one). */
  #flush (last: boolean): void {
    if (this.#pendingBytes === 0 || this.#error !== null) return
    const size = this.#port.chunkSize
    if (!last && this.#pendingBytes < size) return
    const all = this.#pending.length === 1 ? this.#pending[0] : Buffer.concat(this.#pending, this.#pendingBytes)
    const out: Buffer[] = []
    let at = 0
    while (all.length - at >= size) {
      out.push(all.subarray(at, at + size))
      at += size
    }
    const rest = all.subarray(at)
    if (last && rest.length > 0) out.push(rest)
    this.#pending = !last && rest.length > 0 ? [rest] : []
    this.#pendingBytes = !last ? rest.length : 0
    if (out.length === 0) return
    this.#chunks += out.length
    const tracked: Promise<void> = this.#port.push(out).then(() => {}, (err: Error) => {
      if (this.#error === null) this.#error = err
      this.#pending = []
      this.#pendingBytes = 0
    }).finally(() => this.#inflight.delete(tracked))
    this.#inflight.add(tracked)
  }
}

/** A stored head, checked for the fields serving needs; null when it is not JSON or not a head. */
function parseMeta (json: string): StoredMeta | null {
  let m: Partial<StoredMeta>
  try {
    m = JSON.parse(json) as Partial<StoredMeta>
  } catch {
    return null
  }
  if (m === null || typeof m !== 'object' || typeof m.key !== 'string' || typeof m.variant !== 'string' || typeof m.bodyId !== 'string' ||
    typeof m.status !== 'number' || typeof m.size !== 'number' || typeof m.expires !== 'number' || !Array.isArray(m.headers) ||
    typeof m.policy !== 'object' || m.policy === null || !Array.isArray(m.tags) || !m.headers.every((h) => typeof h === 'string')) return null
  return m as StoredMeta
}
