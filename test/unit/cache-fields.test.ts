/**
 * What the cache reads from fields, pure: Cache-Control directives and targeted fields (src/cache/directives.ts),
 * HTTP-dates (src/http/date.ts), the request record and Vary (src/cache/vary.ts), and the heads it stores
 * (src/cache/stored-head.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { directives, targeted } from '../../src/cache/directives.js'
import { httpDate, imfFixdate } from '../../src/http/date.js'
import { requestRecord, variantOf, varyNames } from '../../src/cache/vary.js'
import { merge304, tagsOf } from '../../src/cache/stored-head.js'

test('directives: names case-insensitive, the first occurrence wins, arguments unquoted (RFC 9111 §5.2, §4.2.1)', () => {
  const d = directives('Max-Age=60, max-age=5, private="x-a, x-b", no-cache, S-MAXAGE="120"')
  assert.equal(d.get('max-age'), '60')
  assert.equal(d.get('private'), 'x-a, x-b')
  assert.equal(d.get('no-cache'), true)
  assert.equal(d.get('s-maxage'), '120')
  assert.equal(directives(undefined).size, 0)
})

test('directives: an invalid delta-seconds is 0 (stale, §1.2.2); max-stale without a number is any staleness', () => {
  assert.equal(directives('max-age=abc').get('max-age'), '0')
  assert.equal(directives('max-age=1.5').get('max-age'), '0')
  assert.equal(directives('max-age').get('max-age'), '0')
  assert.equal(directives('max-age=99999999999').get('max-age'), String(2 ** 31), 'capped')
  assert.equal(directives('max-stale').get('max-stale'), true)
  assert.equal(directives('max-stale=x').get('max-stale'), true)
  assert.equal(directives('max-stale=30').get('max-stale'), '30')
})

test('directives: no whitespace around "=" (§5.2): "max-age =60" is not max-age', () => {
  assert.equal(directives('max-age =60').has('max-age'), false)
})

test('targeted: RFC 9213 fields are RFC 8941 Dictionaries; an invalid one is ignored whole, a wrong type per directive', () => {
  assert.equal(targeted('cdn-cache-control', 'max-age=60, must-revalidate', undefined), 'max-age=60, must-revalidate')
  assert.equal(targeted('cdn-cache-control', 'max-age="60", no-store', undefined), 'no-store')
  assert.equal(targeted('cdn-cache-control', 'max-age=-1', undefined), '')
  assert.equal(targeted('cdn-cache-control', 'max-age=(', undefined), null)
})

test('targeted: Surrogate-Control directives for this device token win; those for another are skipped (Edge Architecture 1.0)', () => {
  assert.equal(targeted('surrogate-control', 'max-age=10, max-age=60;portico, no-store;other', 'portico'), 'max-age=60')
  assert.equal(targeted('surrogate-control', 'no-store;other', 'portico'), null)
})

test('httpDate: the three forms of RFC 9110 §5.6.7, case-insensitive (RFC 9111 §4.2), nothing else', () => {
  const t = Date.UTC(1994, 10, 6, 8, 49, 37)
  assert.equal(httpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t)
  assert.equal(httpDate('sun, 06 nov 1994 08:49:37 gmt'), t)
  assert.equal(httpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t)
  assert.equal(httpDate('Sun Nov  6 08:49:37 1994'), t)
  for (const bad of ['Sun, 06 Nov 1994 08:49:37 UTC', 'Sun, 6 Nov 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 8:49:37 GMT', 'Sun, 06 Foo 1994 08:49:37 GMT', 'Sun, 32 Nov 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 24:00:00 GMT', '1994-11-06T08:49:37Z', '']) {
    assert.ok(Number.isNaN(httpDate(bad)), bad)
  }
  assert.ok(Number.isNaN(httpDate(undefined)))
})

test('httpDate: a two-digit RFC 850 year more than 50 years ahead is the previous century', () => {
  const year = new Date().getUTCFullYear()
  const ahead = (year + 60) % 100
  const parsed = new Date(httpDate(`Monday, 01-Jan-${String(ahead).padStart(2, '0')} 00:00:00 GMT`)).getUTCFullYear()
  assert.ok(parsed <= year + 50 && parsed > year - 100, `parsed ${parsed}`)
})

test('imfFixdate: any valid HTTP-date rewritten in the preferred form; invalid → undefined', () => {
  assert.equal(imfFixdate('Sunday, 06-Nov-94 08:49:37 GMT'), 'Sun, 06 Nov 1994 08:49:37 GMT')
  assert.equal(imfFixdate('soon'), undefined)
})

test('requestRecord: pseudo-headers and Pragma dropped, the routing host set, values normalised (RFC 9111 §4.1)', () => {
  const r = requestRecord({
    ':path': '/x', pragma: 'no-cache', host: 'Example.TEST:80', 'accept-encoding': ' GZIP , Br ', 'accept-language': 'EN',
    'x-custom': ' A , B ', 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT', 'cache-control': 'Max-Age=5, max-age=9',
    'x-list': ['a', 'b']
  }, 'example.test')
  assert.equal(r[':path'], undefined)
  assert.equal(r.pragma, undefined)
  assert.equal(r.host, 'example.test')
  assert.equal(r['accept-encoding'], 'gzip,br')
  assert.equal(r['accept-language'], 'en')
  assert.equal(r['x-custom'], 'A,B', 'case kept where the field is case-sensitive')
  assert.equal(r['if-modified-since'], 'Sun, 06 Nov 1994 08:49:37 GMT', 'a date keeps its comma')
  assert.equal(r['cache-control'], 'max-age=5')
  assert.equal(r['x-list'], 'a,b')
})

test('varyNames and variantOf: the secondary key from the nominated fields (RFC 9111 §4.1)', () => {
  assert.equal(varyNames({}), null)
  assert.deepEqual(varyNames({ vary: 'User-Agent, Accept-Encoding' }), ['accept-encoding', 'user-agent'])
  assert.deepEqual(varyNames({ vary: 'accept, *' }), ['*'])
  assert.equal(varyNames({ vary: ' , ' }), null)
  assert.equal(variantOf(null, { accept: 'x' }), '')
  assert.equal(variantOf(['accept', 'x-missing'], { accept: 'text/html' }), 'accept:text/html\nx-missing:\n')
})

test('merge304: the 304\'s fields replace the stored ones, except those a 304 cannot change (RFC 9111 §3.2)', () => {
  const stored = ['Content-Type', 'text/plain', 'Content-Length', '5', 'ETag', '"1"', 'Cache-Control', 'max-age=1', 'X-Keep', 'yes']
  const update = ['cache-control', 'max-age=60', 'content-length', '0', 'etag', '"1"', 'x-new', 'n']
  assert.deepEqual(merge304(stored, update), ['Content-Type', 'text/plain', 'Content-Length', '5', 'X-Keep', 'yes', 'cache-control', 'max-age=60', 'etag', '"1"', 'x-new', 'n'])
})

test('tagsOf: Surrogate-Key is space-separated, Cache-Tag comma-separated, duplicates once', () => {
  assert.deepEqual(tagsOf({ 'surrogate-key': 'a  b c', 'cache-tag': 'c, d ,e' }), ['a', 'b', 'c', 'd', 'e'])
  assert.deepEqual(tagsOf({}), [])
})
