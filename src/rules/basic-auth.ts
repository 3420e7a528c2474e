/**
 * HTTP Basic authentication (RFC 7617): the user list, the password hashes, and the check of an `Authorization`
 * header value against them. Wiring (which routes ask for it, the 401/400 answers) lives elsewhere.
 *
 * Hashes. Two kinds are accepted, nothing else:
 * - scrypt, Portico's format (a PHC string; base64 is standard RFC 4648 base64 without `=` padding):
 *     `$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>`
 *   ln is log2 of scrypt's N. `hashPassword` writes ln=15, r=8, p=1 (32 MiB), a 16-byte salt and a 32-byte hash.
 *   Accepted when parsed: 1 ≤ ln ≤ 24, 1 ≤ r ≤ 32, 1 ≤ p ≤ 16, 128·N·r ≤ 256 MiB, a salt of 8-64 bytes and a hash of
 *   16-64 bytes, both in canonical base64.
 * - bcrypt, `$2a$`, `$2b$` or `$2y$` with a cost of 04-31 (htpasswd -B, most other tools). `hashPassword` writes
 *   `$2b$12$...` (bcryptjs, pure JavaScript). bcrypt reads only the first 72 bytes of a password, so
 *   `hashPassword(p, 'bcrypt')` refuses a longer one.
 * Plain text, MD5 (`$apr1$`, `$1$`), SHA-1 (`{SHA}`), SHA-crypt (`$5$`, `$6$`), DES crypt and anything else are refused
 * by `parseUsers` with a pointer to `portico hash-password`. Error messages never repeat the hash text (it may be a
 * plain-text password).
 *
 * Passwords are Unicode strings, normalised to NFC before hashing and before verifying (RFC 7617 §2.1: with
 * charset="UTF-8" the client sends NFC, UTF-8 encoded), so a password typed on a terminal and the same one sent by a
 * browser agree.
 *
 * `BasicAuth.check` answers, for one `Authorization` field value (RFC 9110 §11.6.2, RFC 7617 §2):
 * - `null` (answer 401 with `challenge`): no field, an empty one, a scheme other than Basic (compared
 *   case-insensitively; the client can retry with Basic, so it is "no usable credentials", not a bad request), an
 *   unknown user, or a wrong password. An empty user-id (`:password`) is well-formed and is simply an unknown user.
 * - `'malformed'` (answer 400): the field is longer than 4096 characters; or it is not `auth-scheme [1*SP rest]` with
 *   a token for the scheme; or the scheme is Basic and the rest is missing, is not base64 (RFC 4648 §4 alphabet,
 *   padding optional but, when present, correct; no whitespace or other characters inside), does not decode to
 *   UTF-8, or has no `:` between user-id and password. The first `:` splits, so a user-id never contains one, a
 *   password may.
 * - the configured user name: the password verifies.
 *
 * Timing. The derived bytes are compared with `timingSafeEqual` (scrypt: the raw derived key; bcrypt: the 60-char
 * hash string, recomputed with the stored salt). A user who does not exist is still verified, against a dummy hash
 * of the kind and parameters most users have, so the time of a failure does not tell which names exist (when users
 * mix kinds, it can still tell the kind of an existing user's hash from the dummy's). scrypt runs on libuv's thread
 * pool (async `crypto.scrypt`); bcryptjs runs on the main thread in slices of at most ~100 ms.
 *
 * Cache. A successful verification is remembered in a bounded LRU (`cacheSize` entries, default 1000, 0 turns it off)
 * keyed by the SHA-256 of the exact decoded credential bytes, so a logged-in client does not cost a scrypt/bcrypt run
 * per request (Caddy does the same). Failures are never cached. Concurrent checks of the same credential share one
 * verification. The cache belongs to the instance; a config reload builds a new one.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { LRUCache } from 'lru-cache'

/** bcryptjs, loaded when a bcrypt hash is first made or checked (a config with scrypt hashes never loads it). */
async function loadBcrypt (): Promise<typeof import('bcryptjs').default> {
  return (await import('bcryptjs')).default
}

export interface BasicUser { name: string, hash: string }

export interface BasicAuthOptions {
  /** The realm in the challenge. Visible ASCII, space and tab only. Default "restricted". */
  realm?: string
  /** Successful verifications remembered. Default 1000; 0 turns the cache off. */
  cacheSize?: number
}

/** The longest `Authorization` value looked at; a longer one is `'malformed'` (nothing is decoded or hashed). */
export const MAX_AUTHORIZATION_LENGTH = 4096

/** A bad entry in a user list. `line` is 1-based: the line of the file, or the position in the list. */
export class UserListError extends Error {
  readonly line: number
  constructor (line: number, message: string, form: 'line' | 'entry') {
    super(`${form} ${line}: ${message}`)
    this.name = 'UserListError'
    this.line = line
  }
}

const HASH_HINT = 'run `portico hash-password` to make a scrypt or bcrypt hash'

const SCRYPT_DEFAULT = { ln: 15, r: 8, p: 1, saltBytes: 16, keyBytes: 32 }
const SCRYPT_MAX_MEMORY = 256 * 1024 * 1024
const BCRYPT_COST = 12
const BCRYPT_MAX_BYTES = 72

const BCRYPT_RE = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/
const SCRYPT_RE = /^\$scrypt\$ln=([0-9]{1,2}),r=([0-9]{1,2}),p=([0-9]{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

interface ScryptHash { kind: 'scrypt', ln: number, r: number, p: number, salt: Buffer, key: Buffer }
interface BcryptHash { kind: 'bcrypt', cost: number, text: string }
type ParsedHash = ScryptHash | BcryptHash

/** Standard base64 without padding. */
function b64 (bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '')
}

/** Parses a hash of a kind Portico verifies; otherwise a message saying why not (without the hash text). */
function parseHash (hash: string): ParsedHash | string {
  if (hash.startsWith('$2')) {
    if (!BCRYPT_RE.test(hash)) return `not a valid bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31, 60 characters); ${HASH_HINT}`
    return { kind: 'bcrypt', cost: Number(hash.slice(4, 6)), text: hash }
  }
  if (hash.startsWith('$scrypt$')) {
    const m = SCRYPT_RE.exec(hash)
    if (m === null) return `not a valid scrypt hash (expected $scrypt$ln=N,r=N,p=N$<salt base64>$<hash base64>); ${HASH_HINT}`
    const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])]
    if (ln < 1 || ln > 24 || r < 1 || r > 32 || p < 1 || p > 16 || 128 * 2 ** ln * r > SCRYPT_MAX_MEMORY) {
      return `scrypt parameters out of range (1 ≤ ln ≤ 24, 1 ≤ r ≤ 32, 1 ≤ p ≤ 16, at most 256 MiB); ${HASH_HINT}`
    }
    const salt = Buffer.from(m[4], 'base64')
    const key = Buffer.from(m[5], 'base64')
    if (b64(salt) !== m[4] || b64(key) !== m[5]) return `scrypt salt or hash is not canonical unpadded base64; ${HASH_HINT}`
    if (salt.length < 8 || salt.length > 64 || key.length < 16 || key.length > 64) {
      return `scrypt salt must be 8-64 bytes and hash 16-64 bytes; ${HASH_HINT}`
    }
    return { kind: 'scrypt', ln, r, p, salt, key }
  }
  if (hash.startsWith('$apr1$') || hash.startsWith('$1$')) return `MD5 hashes are not accepted; ${HASH_HINT}`
  if (hash.startsWith('{SHA}')) return `SHA-1 hashes are not accepted; ${HASH_HINT}`
  if (hash.startsWith('$5$') || hash.startsWith('$6$')) return `SHA-crypt hashes are not accepted; ${HASH_HINT}`
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return `crypt (DES) hashes and plain-text passwords are not accepted; ${HASH_HINT}`
  if (hash.startsWith('$')) return `unsupported hash kind; ${HASH_HINT}`
  return `plain-text passwords are not accepted; ${HASH_HINT}`
}

/**
 * Parses users: a list of "name:hash" strings or the text of an htpasswd-style file (one "name:hash" per line,
 * lines starting with # are comments, blank lines are skipped; each list element is read as one such line).
 * Surrounding whitespace of a line is ignored; the first ":" splits name and hash. Throws a `UserListError` naming
 * the line (1-based; "line N" for a file, "entry N" for a list) for a missing colon, an empty name, a name used twice
 * (compared after NFC normalisation), and a hash that is not bcrypt or Portico's scrypt.
 */
export function parseUsers (input: string | readonly string[]): BasicUser[] {
  const form = typeof input === 'string' ? 'line' : 'entry'
  const lines = typeof input === 'string' ? input.split(/\r?\n/) : input
  const users: BasicUser[] = []
  const seen = new Set<string>()
  lines.forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const colon = line.indexOf(':')
    if (colon === -1) throw new UserListError(i + 1, 'expected "name:hash" (no ":" found)', form)
    const name = line.slice(0, colon).trim()
    const hash = line.slice(colon + 1).trim()
    if (name === '') throw new UserListError(i + 1, 'empty user name', form)
    if ([...name].some((c) => c < ' ' || c === '\x7f')) throw new UserListError(i + 1, 'control character in the user name', form)
    const key = name.normalize('NFC')
    if (seen.has(key)) throw new UserListError(i + 1, `duplicate user "${name}"`, form)
    const parsed = parseHash(hash)
    if (typeof parsed === 'string') throw new UserListError(i + 1, `user "${name}": ${parsed}`, form)
    seen.add(key)
    users.push({ name, hash })
  })
  return users
}

function scryptAsync (password: string, salt: Buffer, keylen: number, ln: number, r: number, p: number): Promise<Buffer> {
  // maxmem: twice the 128·N·r working set, so OpenSSL's own accounting (which adds a little) never refuses it.
  const maxmem = 2 * 128 * 2 ** ln * r + 1024 * 1024
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N: 2 ** ln, r, p, maxmem }, (err, key) => { if (err !== null) reject(err); else resolve(key) })
  })
}

/**
 * Hashes a password: scrypt by default (async `crypto.scrypt`, ln=15 r=8 p=1, 16-byte salt, 32-byte hash, written
 * as `$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>`), or bcrypt with cost 12 (`$2b$12$...`). The password is NFC
 * normalised first. Throws a RangeError for an empty password, and for bcrypt one over 72 UTF-8 bytes.
 */
export async function hashPassword (password: string, algorithm: 'scrypt' | 'bcrypt' = 'scrypt'): Promise<string> {
  const pw = password.normalize('NFC')
  if (pw === '') throw new RangeError('empty password')
  if (algorithm === 'bcrypt') {
    if (Buffer.byteLength(pw, 'utf8') > BCRYPT_MAX_BYTES) {
      throw new RangeError(`bcrypt uses only the first ${BCRYPT_MAX_BYTES} bytes of a password; use scrypt for a longer one`)
    }
    const bcrypt = await loadBcrypt()
    return await bcrypt.hash(pw, await bcrypt.genSalt(BCRYPT_COST))
  }
  if (algorithm !== 'scrypt') throw new RangeError(`unknown algorithm "${String(algorithm)}" (expected scrypt or bcrypt)`)
  const { ln, r, p, saltBytes, keyBytes } = SCRYPT_DEFAULT
  const salt = randomBytes(saltBytes)
  const key = await scryptAsync(pw, salt, keyBytes, ln, r, p)
  return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`
}

async function verifyParsed (password: string, hash: ParsedHash): Promise<boolean> {
  const pw = password.normalize('NFC')
  if (hash.kind === 'scrypt') {
    const derived = await scryptAsync(pw, hash.salt, hash.key.length, hash.ln, hash.r, hash.p)
    return timingSafeEqual(derived, hash.key)
  }
  // bcrypt: recompute with the stored salt (the first 29 characters), compare the whole 60-character results.
  const computed = Buffer.from(await (await loadBcrypt()).hash(pw, hash.text.slice(0, 29)), 'latin1')
  const stored = Buffer.from(hash.text, 'latin1')
  return computed.length === stored.length && timingSafeEqual(computed, stored)
}

/**
 * Verifies a password against a hash (constant-time on the derived bytes). Rejects with a RangeError when the hash
 * is not of a kind `parseUsers` accepts.
 */
export async function verifyPassword (password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash)
  if (typeof parsed === 'string') throw new RangeError(parsed)
  return await verifyParsed(password, parsed)
}

/** A hash that nothing verifies against, with the same kind and cost as `like`: the stand-in for unknown users. */
function dummyLike (like: ParsedHash): ParsedHash {
  if (like.kind === 'scrypt') return { ...like, salt: randomBytes(like.salt.length), key: randomBytes(like.key.length) }
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  const tail = [...randomBytes(53)].map((b) => alphabet[b & 63]).join('')
  return { kind: 'bcrypt', cost: like.cost, text: `${like.text.slice(0, 7)}${tail}` }
}

/** The kind and cost shared by most users (the first such on a tie); scrypt's default when there are none. */
function commonest (hashes: ParsedHash[]): ParsedHash {
  const counts = new Map<string, { n: number, hash: ParsedHash }>()
  for (const h of hashes) {
    const k = h.kind === 'bcrypt' ? `bcrypt ${h.cost}` : `scrypt ${h.ln} ${h.r} ${h.p} ${h.salt.length} ${h.key.length}`
    const c = counts.get(k)
    if (c === undefined) counts.set(k, { n: 1, hash: h })
    else c.n++
  }
  let best: { n: number, hash: ParsedHash } | undefined
  for (const c of counts.values()) if (best === undefined || c.n > best.n) best = c
  if (best !== undefined) return best.hash
  const { ln, r, p, saltBytes, keyBytes } = SCRYPT_DEFAULT
  return { kind: 'scrypt', ln, r, p, salt: Buffer.alloc(saltBytes), key: Buffer.alloc(keyBytes) }
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Checks `Authorization` values against a fixed user list. See the file comment for the answers. */
export class BasicAuth {
  /** The WWW-Authenticate challenge: `Basic realm="...", charset="UTF-8"`. */
  readonly challenge: string
  readonly #users = new Map<string, { name: string, hash: ParsedHash }>()
  readonly #dummy: ParsedHash
  readonly #cache: LRUCache<string, string> | null
  readonly #pending = new Map<string, Promise<string | null>>()
  #cacheHits = 0
  #verifications = 0

  constructor (users: readonly BasicUser[], options: BasicAuthOptions = {}) {
    const realm = options.realm ?? 'restricted'
    if (!/^[\t\x20-\x7e]*$/.test(realm)) throw new RangeError('realm: only visible ASCII characters, space and tab')
    this.challenge = `Basic realm="${realm.replace(/[\\"]/g, '\\$&')}", charset="UTF-8"`
    for (const [i, u] of users.entries()) {
      if (u.name === '' || u.name.includes(':')) throw new UserListError(i + 1, 'a user name must be non-empty and have no ":"', 'entry')
      const key = u.name.normalize('NFC')
      if (this.#users.has(key)) throw new UserListError(i + 1, `duplicate user "${u.name}"`, 'entry')
      const parsed = parseHash(u.hash)
      if (typeof parsed === 'string') throw new UserListError(i + 1, `user "${u.name}": ${parsed}`, 'entry')
      this.#users.set(key, { name: u.name, hash: parsed })
    }
    this.#dummy = dummyLike(commonest([...this.#users.values()].map((u) => u.hash)))
    const size = options.cacheSize ?? 1000
    if (!Number.isInteger(size) || size < 0) throw new RangeError('cacheSize: a whole number ≥ 0')
    this.#cache = size === 0 ? null : new LRUCache<string, string>({ max: size })
  }

  /** Checks served from the cache of successful verifications (for tests and metrics). */
  get cacheHits (): number { return this.#cacheHits }

  /** Password verifications run (scrypt/bcrypt), including those against the dummy hash for unknown users. */
  get verifications (): number { return this.#verifications }

  /**
   * Checks an Authorization header value. Resolves with the user name when valid, null when absent, of another
   * scheme, or wrong (unknown user or password), 'malformed' when it is not a well-formed Basic credential (see the
   * file comment for the exact rules). Rejects only when the hash computation itself fails (not expected: the hashes
   * were validated by the constructor).
   */
  async check (authorization: string | undefined): Promise<string | null | 'malformed'> {
    if (authorization === undefined) return null
    if (authorization.length > MAX_AUTHORIZATION_LENGTH) return 'malformed'
    const value = authorization.trim()
    if (value === '') return null
    const sp = value.indexOf(' ')
    const scheme = sp === -1 ? value : value.slice(0, sp)
    if (!TOKEN_RE.test(scheme)) return 'malformed'
    if (scheme.toLowerCase() !== 'basic') return null
    const token = sp === -1 ? '' : value.slice(sp + 1).replace(/^ +/, '')
    if (token === '' || !BASE64_RE.test(token)) return 'malformed'
    const bytes = Buffer.from(token, 'base64')
    let userPass: string
    try {
      userPass = UTF8.decode(bytes)
    } catch {
      return 'malformed'
    }
    const colon = userPass.indexOf(':')
    if (colon === -1) return 'malformed'

    const cacheKey = createHash('sha256').update(bytes).digest('base64')
    const cached = this.#cache?.get(cacheKey)
    if (cached !== undefined) {
      this.#cacheHits++
      return cached
    }
    const pending = this.#pending.get(cacheKey)
    if (pending !== undefined) return await pending
    const run = this.#verify(userPass.slice(0, colon), userPass.slice(colon + 1), cacheKey)
    this.#pending.set(cacheKey, run)
    try {
      return await run
    } finally {
      this.#pending.delete(cacheKey)
    }
  }

  async #verify (userId: string, password: string, cacheKey: string): Promise<string | null> {
    const user = this.#users.get(userId.normalize('NFC'))
    this.#verifications++
    // An unknown user costs the same verification, against the dummy; its result is thrown away.
    const ok = await verifyParsed(password, user?.hash ?? this.#dummy)
    if (user === undefined || !ok) return null
    this.#cache?.set(cacheKey, user.name)
    return user.name
  }
}
