/**
 * The cache's lookup decision (src/cache/lookup.ts), pure: stored heads in, a decision out. Freshness is set up with
 * Age and max-age values far apart, so no outcome depends on how long the test takes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lookup, passesThrough } from '../../src/cache/lookup.js'
import { Freshness, headerRecord } from '../../src/cache/policy.js'
import { requestRecord, variantOf } from '../../src/cache/vary.js'
import type { StoredMeta, StoredResponse } from '../../src/cache/store.js'

const OPTS = { heuristicFraction: 0.1, targetedFields: ['cdn-cache-control', 'surrogate-control'] }
const KEY = 'GET http://example.test/a'

function req (headers: Record<string, string> = {}) {
  return requestRecord(headers, 'example.test')
}

/** A stored response for `request`, judged and serialised the way a fill stores it. */
function stored (response: string[], request = req(), status = 200): StoredResponse {
  const f = Freshness.judge('GET', '/a', request, status, headerRecord(response), OPTS)
  assert.ok(f instanceof Freshness, `storable: ${String(f)}`)
  const meta: StoredMeta = {
    key: KEY, variant: variantOf(f.vary, request), host: 'example.test', path: '/a', status, headers: response,
    policy: f.serialize(), tags: [], size: 5, bodyId: `b${Math.random()}`, expires: Date.now() + 3_600_000
  }
  return { meta, chunks: [Buffer.from('hello')] }
}

const fresh = (): StoredResponse => stored(['cache-control', 'max-age=3600', 'etag', '"1"'])
const stale = (extra: string[] = []): StoredResponse => stored(['cache-control', 'max-age=10', 'age', '1000', 'etag', '"1"', ...extra])

test('preconditions only the origin can judge pass through: If-Match, If-Unmodified-Since (RFC 9110 §13.1.1, §13.1.4)', () => {
  assert.equal(passesThrough(req({ 'if-match': '"1"' })), true)
  assert.equal(passesThrough(req({ 'if-unmodified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' })), true)
  assert.equal(passesThrough(req({ 'if-none-match': '"1"' })), false)
  assert.equal(passesThrough(req()), false)
})

test('nothing stored: a GET is a miss (uri-miss) and is filled', () => {
  assert.deepEqual(lookup('GET', req(), [], false), { kind: 'miss', fwd: 'uri-miss' })
})

test('nothing stored: a Range request or a HEAD passes through, storing nothing', () => {
  assert.deepEqual(lookup('GET', req({ range: 'bytes=0-1' }), [], false), { kind: 'pass', fwd: 'uri-miss' })
  assert.deepEqual(lookup('HEAD', req(), [], false), { kind: 'pass', fwd: 'uri-miss' })
})

test('a fresh stored response answers (RFC 9111 §4.2)', () => {
  const d = lookup('GET', req(), [fresh()], false)
  assert.equal(d.kind, 'fresh')
  assert.equal(d.kind === 'fresh' && d.stale, false)
})

test('a HEAD is answered from a fresh GET', () => {
  assert.equal(lookup('HEAD', req(), [fresh()], false).kind, 'fresh')
})

test('Vary: the stored variant must match the request; otherwise a vary-miss (RFC 9111 §4.1)', () => {
  const gz = req({ 'accept-encoding': 'gzip' })
  const entry = stored(['cache-control', 'max-age=3600', 'vary', 'Accept-Encoding'], gz)
  assert.equal(lookup('GET', req({ 'accept-encoding': 'GZIP' }), [entry], false).kind, 'fresh', 'case-insensitive field normalised')
  assert.deepEqual(lookup('GET', req({ 'accept-encoding': 'br' }), [entry], false), { kind: 'miss', fwd: 'vary-miss' })
  assert.deepEqual(lookup('HEAD', req({ 'accept-encoding': 'br' }), [entry], false), { kind: 'pass', fwd: 'vary-miss' })
})

test('of several variants, the one matching the request answers', () => {
  const a = stored(['cache-control', 'max-age=3600', 'vary', 'Accept-Language', 'x-v', 'en'], req({ 'accept-language': 'en' }))
  const b = stored(['cache-control', 'max-age=3600', 'vary', 'Accept-Language', 'x-v', 'fr'], req({ 'accept-language': 'fr' }))
  const d = lookup('GET', req({ 'accept-language': 'fr' }), [a, b], false)
  assert.equal(d.kind, 'fresh')
  assert.equal(d.kind === 'fresh' && d.candidate.stored, b)
})

test('a stored policy that cannot be read is skipped, not fatal', () => {
  const broken: StoredResponse = { ...fresh(), meta: { ...fresh().meta, policy: { p: { v: 99 } } } }
  assert.deepEqual(lookup('GET', req(), [broken], false), { kind: 'miss', fwd: 'uri-miss' })
  assert.equal(lookup('GET', req(), [broken, fresh()], false).kind, 'fresh')
})

test('a stale response with a validator is revalidated (fwd=stale)', () => {
  const d = lookup('GET', req(), [stale()], false)
  assert.equal(d.kind, 'revalidate')
  assert.equal(d.kind === 'revalidate' && d.fwd, 'stale')
})

test('the request can ask for more than the stored response gives: revalidate with fwd=request (RFC 9111 §5.2.1)', () => {
  for (const cc of ['no-cache', 'max-age=0', 'min-fresh=7200']) {
    const d = lookup('GET', req({ 'cache-control': cc }), [stored(['cache-control', 'max-age=3600', 'age', '10', 'etag', '"1"'])], false)
    assert.equal(d.kind, 'revalidate', cc)
    assert.equal(d.kind === 'revalidate' && d.fwd, 'request', cc)
  }
})

test('max-stale lets a stale response through (RFC 9111 §5.2.1.2), as a stale hit', () => {
  const d = lookup('GET', req({ 'cache-control': 'max-stale' }), [stale()], false)
  assert.equal(d.kind, 'fresh')
  assert.equal(d.kind === 'fresh' && d.stale, true)
  assert.equal(lookup('GET', req({ 'cache-control': 'max-stale=5000' }), [stale()], false).kind, 'fresh')
  assert.equal(lookup('GET', req({ 'cache-control': 'max-stale=5' }), [stale()], false).kind, 'revalidate', 'stale by more than allowed')
})

test('stale-while-revalidate: inside the window the stale response answers and is refreshed (RFC 5861 §3)', () => {
  assert.equal(lookup('GET', req(), [stale(['cache-control', 'stale-while-revalidate=5000'])], false).kind, 'stale-while-revalidate')
  assert.equal(lookup('GET', req(), [stale(['cache-control', 'stale-while-revalidate=5'])], false).kind, 'revalidate', 'past the window')
})

test('only-if-cached with nothing usable: not-cached (RFC 9111 §5.2.1.7), never a fill', () => {
  const onlyIfCached = req({ 'cache-control': 'only-if-cached' })
  assert.deepEqual(lookup('GET', onlyIfCached, [], true), { kind: 'not-cached' })
  assert.deepEqual(lookup('GET', onlyIfCached, [stale()], true), { kind: 'not-cached' })
  assert.equal(lookup('GET', onlyIfCached, [fresh()], true).kind, 'fresh', 'a usable response still answers')
})
