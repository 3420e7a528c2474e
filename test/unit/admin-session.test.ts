/**
 * The admin session cookie (server/admin-session.ts): what it is made of and when it stops being accepted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { AdminSession, SESSION_SECONDS } from '../../src/server/admin-session.js'

const request = (headers: Record<string, string>): IncomingMessage => ({ headers } as unknown as IncomingMessage)

/** The cookie's name=value from a Set-Cookie value. */
const pair = (setCookie: string): string => setCookie.split(';')[0]

test('a session cookie: HttpOnly, SameSite=Strict, Path=/, never the token; accepted until it expires', () => {
  let now = 1_700_000_000_000
  const s = new AdminSession('the-token', () => now)
  const set = s.setCookie()
  assert.match(set, /^portico_admin=\d+\.[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/)
  assert.equal(set.includes('the-token'), false)
  assert.equal(s.cookie(request({ cookie: `other=1; ${pair(set)}` })), true)
  now += (SESSION_SECONDS - 1) * 1000
  assert.equal(s.cookie(request({ cookie: pair(set) })), true)
  now += 2000
  assert.equal(s.cookie(request({ cookie: pair(set) })), false, 'expired')
})

test('a forged, altered or foreign cookie is refused; the bearer token still works', () => {
  const s = new AdminSession('the-token')
  const [expires, sig] = pair(s.setCookie()).split('=')[1].split('.')
  assert.equal(s.cookie(request({ cookie: `portico_admin=${Number(expires) + 3600}.${sig}` })), false, 'a later expiry with the same signature')
  assert.equal(s.cookie(request({ cookie: `portico_admin=${expires}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}` })), false)
  assert.equal(s.cookie(request({ cookie: 'portico_admin=the-token' })), false)
  assert.equal(s.cookie(request({})), false)
  const other = new AdminSession('the-token')
  assert.equal(other.cookie(request({ cookie: pair(s.setCookie()) })), false, 'another server (or a restart) has another key')
  assert.equal(s.bearer(request({ authorization: 'Bearer the-token' })), true)
  assert.equal(s.bearer(request({ authorization: 'Bearer the-token-not' })), false)
  assert.equal(s.tokenMatches('the-token'), true)
  assert.equal(s.tokenMatches(''), false)
})
