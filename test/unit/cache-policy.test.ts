/**
 * RFC 9111 decisions for one response (src/cache/policy.ts): what a shared cache may store, for how long, and how a
 * stored response answers a request. Freshness is set up with Age and max-age values far apart, so no outcome
 * depends on how long the test takes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import CachePolicy from 'http-cache-semantics'
import { evaluate, Freshness, headerRecord, type HeaderRecord, type SerializedPolicy } from '../../src/cache/policy.js'
import { requestRecord } from '../../src/cache/vary.js'

const OPTS = { heuristicFraction: 0.1, targetedFields: ['cdn-cache-control', 'surrogate-control'], surrogateToken: 'portico' }
const req = (h: Record<string, string> = {}): HeaderRecord => requestRecord(h, 'example.test')

function judge (res: string[], status = 200, request = req(), method = 'GET'): Freshness | string {
  return Freshness.judge(method, '/a', request, status, headerRecord(res), OPTS)
}

function f (res: string[], status = 200, request = req()): Freshness {
  const j = judge(res, status, request)
  assert.ok(j instanceof Freshness, `expected storable, got ${String(j)}`)
  return j
}

test('storable: explicit freshness, or a validator for heuristics; each refusal says why (RFC 9111 §3)', () => {
  assert.ok(judge(['cache-control', 'max-age=60']) instanceof Freshness)
  assert.equal(judge(['cache-control', 'max-age=60'], 200, req(), 'POST'), 'method')
  assert.equal(judge(['cache-control', 'no-store, max-age=60']), 'no-store')
  assert.equal(judge(['cache-control', 'max-age=60'], 200, req({ 'cache-control': 'no-store' })), 'no-store', 'request no-store (§5.2.1.5)')
  assert.equal(judge(['cache-control', 'private, max-age=60']), 'private')
  assert.equal(judge(['cache-control', 'max-age=60'], 200, req({ authorization: 'Bearer t' })), 'authorization', '§3.5')
  assert.ok(judge(['cache-control', 'public, max-age=60'], 200, req({ authorization: 'Bearer t' })) instanceof Freshness, 'public allows it (§3.5)')
  assert.equal(judge(['cache-control', 'max-age=60', 'set-cookie', 'sid=1']), 'set-cookie', 'never one user\'s cookie to another')
  assert.equal(judge(['cache-control', 'max-age=60', 'vary', '*']), 'vary-star')
  assert.equal(judge([], 302), 'no-freshness', 'understood, but not storable without explicit freshness')
  assert.equal(judge([], 299), 'status')
  const heuristic = f([], 200)
  assert.equal(heuristic.storeFor(3_600_000) <= 0, true, 'a 200 with nothing to go by is judged storable and kept for no time at all')
})

test('any final status with explicit freshness or public is storable (RFC 9111 §3)', () => {
  assert.ok(judge(['cache-control', 'max-age=60'], 299) instanceof Freshness)
  assert.ok(judge(['cache-control', 'max-age=60'], 500) instanceof Freshness)
})

test('must-understand: no-store is ignored for statuses the cache understands, kept for the others (§5.2.2.3)', () => {
  assert.ok(judge(['cache-control', 'must-understand, no-store, max-age=60'], 200) instanceof Freshness)
  assert.equal(judge(['cache-control', 'must-understand, no-store, max-age=60'], 299), 'status')
})

test('qualified no-cache="f" / private="f" keep only the named fields out of the store (§5.2.2.4, §5.2.2.7)', () => {
  const x = f(['cache-control', 'max-age=60, no-cache="Set-Cookie2, X-Secret", private="x-user"', 'x-secret', 'a', 'x-user', 'b'])
  assert.deepEqual([...x.omit].sort(), ['set-cookie2', 'x-secret', 'x-user'])
  assert.equal(x.mustRevalidate, false, 'the qualified form is not the unqualified one')
  assert.equal(judge(['cache-control', 'private="", max-age=60']), 'private', 'an empty list is the unqualified directive')
})

test('must-revalidate, proxy-revalidate, s-maxage and no-cache allow fresh reuse but never stale (§5.2.2.2, §5.2.2.8, §5.2.2.10, §4.2.4)', () => {
  for (const cc of ['max-age=60, must-revalidate', 'max-age=60, proxy-revalidate', 's-maxage=60', 'max-age=60, no-cache']) {
    assert.equal(f(['cache-control', cc]).mustRevalidate, true, cc)
  }
  const mr = f(['cache-control', 'max-age=3600, must-revalidate'])
  assert.deepEqual(evaluate(mr, req()), { use: 'fresh' }, 'the library alone would make it never fresh')
  assert.equal(f(['cache-control', 'max-age=60, stale-while-revalidate=600, stale-if-error=600, must-revalidate', 'age', '100']).staleIfErrorAllowed(), false)
})

test('s-maxage overrides max-age in a shared cache (RFC 9111 §5.2.2.10)', () => {
  const x = f(['cache-control', 'max-age=1, s-maxage=3600', 'age', '100'])
  assert.deepEqual(evaluate(x, req()), { use: 'fresh' })
})

test('targeted fields: CDN-Cache-Control replaces Cache-Control and Expires (RFC 9213 §2.2)', () => {
  assert.ok(judge(['cache-control', 'no-store', 'cdn-cache-control', 'max-age=60']) instanceof Freshness)
  assert.equal(judge(['cache-control', 'max-age=60', 'cdn-cache-control', 'no-store']), 'no-store')
  // An invalid RFC 8941 Dictionary is ignored whole: Cache-Control applies.
  assert.ok(judge(['cache-control', 'max-age=60', 'cdn-cache-control', 'max-age=("x"']) instanceof Freshness)
  // A wrong-typed value is ignored: max-age="60" is no max-age, and the valid field still replaces Cache-Control.
  const typed = f(['cache-control', 'max-age=60', 'cdn-cache-control', 'max-age="60"'])
  assert.equal(typed.storeFor(0) <= 0, true, 'no freshness left once Cache-Control is replaced')
})

test('Surrogate-Control: directives targeted at this cache win; those for another surrogate are skipped', () => {
  const mine = f(['surrogate-control', 'max-age=10, max-age=3600;portico', 'age', '100'])
  assert.deepEqual(evaluate(mine, req()), { use: 'fresh' })
  const foreign = f(['cache-control', 'max-age=3600', 'surrogate-control', 'no-store;other'])
  assert.deepEqual(evaluate(foreign, req()), { use: 'fresh' }, 'a field with nothing for this cache is ignored: Cache-Control applies')
})

test('an invalid Expires means already expired (RFC 9111 §5.3); strict HTTP-dates only', () => {
  const x = f(['expires', 'tomorrow', 'etag', '"1"'])
  assert.deepEqual(evaluate(x, req()), { use: 'revalidate', why: 'stale' })
})

test('Age: the first member of a list counts; an invalid value is ignored (§5.1)', () => {
  assert.deepEqual(evaluate(f(['cache-control', 'max-age=60', 'age', '100, 5']), req()).use, 'revalidate')
  assert.deepEqual(evaluate(f(['cache-control', 'max-age=60', 'age', 'soon', 'etag', '"1"']), req()), { use: 'fresh' })
})

test('the apparent age from Date counts too (§4.2.3)', () => {
  const old = new Date(Date.now() - 3_600_000).toUTCString()
  const x = f(['cache-control', 'max-age=60', 'date', old, 'etag', '"1"'])
  assert.equal(x.age() >= 3599, true)
  assert.equal(evaluate(x, req()).use, 'revalidate')
})

test('evaluate: the request directives (RFC 9111 §5.2.1)', () => {
  const fresh = f(['cache-control', 'max-age=3600', 'age', '100'])
  assert.deepEqual(evaluate(fresh, req()), { use: 'fresh' })
  assert.deepEqual(evaluate(fresh, req({ 'cache-control': 'no-cache' })), { use: 'revalidate', why: 'request' })
  assert.deepEqual(evaluate(fresh, req({ 'cache-control': 'max-age=50' })), { use: 'revalidate', why: 'request' })
  assert.deepEqual(evaluate(fresh, req({ 'cache-control': 'max-age=500' })), { use: 'fresh' })
  assert.deepEqual(evaluate(fresh, req({ 'cache-control': 'min-fresh=4000' })), { use: 'revalidate', why: 'request' })
  assert.deepEqual(evaluate(fresh, req({ 'cache-control': 'min-fresh=60' })), { use: 'fresh' })
  assert.deepEqual(evaluate(fresh, req({ pragma: 'no-cache' })), { use: 'fresh' }, 'Pragma has no meaning for a cache (§5.4)')
})

test('evaluate: max-stale (§5.2.1.2), never for a must-revalidate response (§5.2.2.2)', () => {
  const stale = f(['cache-control', 'max-age=60', 'age', '100', 'etag', '"1"'])
  assert.deepEqual(evaluate(stale, req()), { use: 'revalidate', why: 'stale' })
  assert.deepEqual(evaluate(stale, req({ 'cache-control': 'no-cache' })), { use: 'revalidate', why: 'stale' })
  assert.deepEqual(evaluate(stale, req({ 'cache-control': 'max-stale' })), { use: 'stale' })
  assert.deepEqual(evaluate(stale, req({ 'cache-control': 'max-stale=100' })), { use: 'stale' })
  assert.deepEqual(evaluate(stale, req({ 'cache-control': 'max-stale=10' })), { use: 'revalidate', why: 'stale' })
  const mr = f(['cache-control', 'max-age=60, must-revalidate', 'age', '100'])
  assert.deepEqual(evaluate(mr, req({ 'cache-control': 'max-stale' })), { use: 'revalidate', why: 'stale' })
})

test('evaluate: stale-while-revalidate inside its window only, never with must-revalidate (RFC 5861 §3)', () => {
  assert.deepEqual(evaluate(f(['cache-control', 'max-age=60, stale-while-revalidate=600', 'age', '100']), req()), { use: 'swr' })
  assert.deepEqual(evaluate(f(['cache-control', 'max-age=60, stale-while-revalidate=10', 'age', '100', 'etag', '"1"']), req()), { use: 'revalidate', why: 'stale' })
  assert.deepEqual(evaluate(f(['cache-control', 'max-age=60, stale-while-revalidate=600, proxy-revalidate', 'age', '100']), req()), { use: 'revalidate', why: 'stale' })
})

test('staleIfErrorAllowed: from the response or the request, within its window (RFC 5861 §4)', () => {
  const sie = f(['cache-control', 'max-age=60, stale-if-error=600', 'age', '100'])
  assert.equal(sie.staleIfErrorAllowed(), true)
  const plain = f(['cache-control', 'max-age=60', 'age', '100', 'etag', '"1"'])
  assert.equal(plain.staleIfErrorAllowed(), false)
  assert.equal(plain.staleIfErrorAllowed(req({ 'cache-control': 'stale-if-error=600' })), true)
  assert.equal(plain.staleIfErrorAllowed(req({ 'cache-control': 'stale-if-error=10' })), false, 'past the window')
})

test('storeFor: the usable life, plus retainStale when a validator allows revalidation', () => {
  assert.equal(f(['cache-control', 'max-age=60', 'age', '100']).storeFor(3_600_000) <= 0, true)
  assert.equal(f(['cache-control', 'max-age=60', 'age', '100', 'etag', '"1"']).storeFor(3_600_000) > 3_500_000, true)
  assert.equal(f(['cache-control', 'max-age=60', 'last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT']).hasValidator, true)
  assert.equal(f(['cache-control', 'max-age=60']).hasValidator, false)
})

test('serialize/restore round trip keeps every decision', () => {
  const x = f(['cache-control', 'max-age=60, stale-while-revalidate=600, stale-if-error=30', 'age', '100', 'etag', '"1"', 'vary', 'Accept-Encoding'], 200, req({ 'accept-encoding': 'gzip' }))
  const y = Freshness.restore(JSON.parse(JSON.stringify(x.serialize())) as SerializedPolicy)
  assert.deepEqual([y.mustRevalidate, y.staleIfError, y.staleWhileRevalidate, y.vary, y.hasValidator, y.omit], [false, 30, 600, ['accept-encoding'], true, []])
  assert.deepEqual(evaluate(y, req({ 'accept-encoding': 'gzip' })), { use: 'swr' })
})

test('an entry stored by an older Portico (no swr, no val) reads them from the library\'s serialized form', () => {
  const x = f(['cache-control', 'max-age=60, stale-while-revalidate=600', 'age', '100', 'etag', '"1"'])
  const { swr: _swr, val: _val, ...older } = x.serialize()
  const y = Freshness.restore(older)
  assert.equal(y.staleWhileRevalidate, 600)
  assert.equal(y.hasValidator, true)
  assert.deepEqual(evaluate(y, req()), { use: 'swr' })
})

test('the stored policy keeps only the request fields Vary names, never credentials', () => {
  const x = f(['cache-control', 'public, max-age=60', 'vary', 'Accept-Language'], 200, req({ 'accept-language': 'fr', cookie: 'sid=1', authorization: 'Bearer t' }))
  const text = JSON.stringify(x.serialize())
  assert.ok(text.includes('"fr"'))
  assert.ok(!text.includes('sid=1') && !text.includes('Bearer t'))
})

test('only the library\'s public serialized form is relied on (CachePolicyObject v1)', () => {
  const p = f(['cache-control', 'max-age=60']).serialize().p as CachePolicy.CachePolicyObject
  assert.equal(p.v, 1)
  assert.equal(typeof p.resh, 'object')
  assert.equal(typeof p.rescc, 'object')
})
