/**
 * The admin session cookie: what a browser presents instead of the bearer token, since a navigation cannot send
 * `Authorization`. Signing in (`GET /?token=…` or the dashboard's form) checks the token and sets
 * `portico_admin=<expiry>.<HMAC-SHA256(random key, expiry and token)>`: never the token itself, worthless after
 * its expiry, after a restart (the key lives in memory only) and with any other token. Every comparison takes the
 * same time whatever is presented.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** The cookie's name. */
export const SESSION_COOKIE = 'portico_admin'

/** How long a session lasts, in seconds (12 hours). */
export const SESSION_SECONDS = 12 * 60 * 60

/** Cookies of that name looked at per request (a client may send several; the rest are ignored). */
const MAX_CANDIDATES = 4

/** True when `a` and `b` are equal, in a time that depends on neither (digests of equal length are compared). */
function sameSecret (a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

export class AdminSession {
  readonly #token: string
  readonly #key = randomBytes(32)
  readonly #now: () => number

  constructor (token: string, now: () => number = Date.now) {
    this.#token = token
    this.#now = now
  }

  /** Whether `presented` is the token. */
  tokenMatches (presented: string): boolean {
    return sameSecret(presented, this.#token)
  }

  /** Whether the request carries `Authorization: Bearer <token>`. */
  bearer (req: IncomingMessage): boolean {
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')
    return m !== null && this.tokenMatches(m[1].trim())
  }

  /** A `Set-Cookie` value for a new session. */
  setCookie (): string {
    const expires = Math.floor(this.#now() / 1000) + SESSION_SECONDS
    return `${SESSION_COOKIE}=${expires}.${this.#sign(expires)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_SECONDS}`
  }

  /** Whether the request carries a session cookie this server made, not yet expired. */
  cookie (req: IncomingMessage): boolean {
    const header = req.headers.cookie
    if (header === undefined) return false
    let seen = 0
    let ok = false
    for (const part of header.split(';')) {
      const eq = part.indexOf('=')
      if (eq === -1 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue
      if (++seen > MAX_CANDIDATES) break
      const m = /^(\d{1,12})\.([A-Za-z0-9_-]{1,64})$/.exec(part.slice(eq + 1).trim())
      if (m === null) continue
      const expires = Number(m[1])
      // Every candidate is compared, expired or not, so the answer's timing says nothing about which one matched.
      const signed = sameSecret(m[2], this.#sign(expires))
      if (signed && expires * 1000 > this.#now()) ok = true
    }
    return ok
  }

  #sign (expires: number): string {
    return createHmac('sha256', this.#key).update(`portico-admin-session\n${expires}\n${this.#token}`).digest('base64url')
  }
}
