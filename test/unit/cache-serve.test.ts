/**
 * The pure helpers of answering from a stored response (src/cache/serve.ts): byte ranges, conditionals, If-Range,
 * and the heads sent downstream.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ifRangeMatches, notModified, notModifiedHeaders, parseRange, servedHeaders } from '../../src/cache/serve.js'

test('parseRange: one bytes range of a representation (RFC 9110 §14.1.2)', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), [0, 9])
  assert.deepEqual(parseRange('bytes=90-', 100), [90, 99], 'open end')
  assert.deepEqual(parseRange('bytes=-10', 100), [90, 99], 'suffix')
  assert.deepEqual(parseRange('bytes=-500', 100), [0, 99], 'suffix longer than the body')
  assert.deepEqual(parseRange('bytes=50-1000', 100), [50, 99], 'end past the body is clipped')
  assert.deepEqual(parseRange(' BYTES = 1 - 2 ', 100), [1, 2], 'unit and whitespace tolerated')
})

test('parseRange: unsatisfiable → 416, anything else → the whole response (RFC 9110 §14.2 allows ignoring Range)', () => {
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable')
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable')
  assert.equal(parseRange('bytes=5-1', 100), null, 'last before first')
  assert.equal(parseRange('bytes=0-1,5-6', 100), null, 'several ranges')
  assert.equal(parseRange('items=0-1', 100), null)
  assert.equal(parseRange('bytes=-', 100), null)
})

const STORED = ['etag', '"abc"', 'last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT', 'date', 'Mon, 07 Nov 1994 08:49:37 GMT']

test('notModified: If-None-Match with weak comparison, "*", lists and unquoted tags (RFC 9110 §13.1.2)', () => {
  assert.equal(notModified({ 'if-none-match': '"abc"' }, STORED, 'GET', 200), true)
  assert.equal(notModified({ 'if-none-match': 'W/"abc"' }, STORED, 'GET', 200), true, 'weak comparison')
  assert.equal(notModified({ 'if-none-match': '"x", "abc"' }, STORED, 'HEAD', 200), true)
  assert.equal(notModified({ 'if-none-match': '*' }, STORED, 'GET', 200), true)
  assert.equal(notModified({ 'if-none-match': 'abc' }, STORED, 'GET', 200), true, 'an unquoted tag compares as if quoted')
  assert.equal(notModified({ 'if-none-match': '"other"' }, STORED, 'GET', 200), false)
  assert.equal(notModified({ 'if-none-match': '"abc"' }, ['date', 'x'], 'GET', 200), false, 'no stored ETag')
})

test('notModified: If-Modified-Since against Last-Modified, else Date (RFC 9111 §4.3.2); ignored with If-None-Match', () => {
  assert.equal(notModified({ 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' }, STORED, 'GET', 200), true)
  assert.equal(notModified({ 'if-modified-since': 'Sat, 05 Nov 1994 08:49:37 GMT' }, STORED, 'GET', 200), false)
  assert.equal(notModified({ 'if-modified-since': 'Mon, 07 Nov 1994 08:49:37 GMT' }, ['date', 'Mon, 07 Nov 1994 08:49:37 GMT'], 'GET', 200), true, 'Date when no Last-Modified')
  assert.equal(notModified({ 'if-modified-since': 'yesterday' }, STORED, 'GET', 200), false, 'an invalid date is ignored')
  assert.equal(notModified({ 'if-none-match': '"other"', 'if-modified-since': 'Sun, 06 Nov 1994 08:49:37 GMT' }, STORED, 'GET', 200), false)
})

test('notModified: only where the answer would be 2xx, and only for GET and HEAD (RFC 9110 §13.2.1)', () => {
  assert.equal(notModified({ 'if-none-match': '"abc"' }, STORED, 'GET', 404), false)
  assert.equal(notModified({ 'if-none-match': '"abc"' }, STORED, 'POST', 200), false)
})

test('ifRangeMatches: a strong ETag equal, or a date equal to Last-Modified (RFC 9110 §13.1.5)', () => {
  assert.equal(ifRangeMatches(undefined, STORED), true)
  assert.equal(ifRangeMatches('"abc"', STORED), true)
  assert.equal(ifRangeMatches('"abd"', STORED), false)
  assert.equal(ifRangeMatches('W/"abc"', STORED), false, 'a weak tag never matches')
  assert.equal(ifRangeMatches('Sun, 06 Nov 1994 08:49:37 GMT', STORED), true)
  assert.equal(ifRangeMatches('Sun, 06 Nov 1994 08:49:38 GMT', STORED), false)
  assert.equal(ifRangeMatches('Sun, 06 Nov 1994 08:49:37 GMT', ['etag', '"abc"']), false, 'no Last-Modified')
})

test('servedHeaders: fields meant for the cache removed, the current Age in place of the stored one (RFC 9111 §5.1)', () => {
  const out = servedHeaders(['Content-Type', 'text/plain', 'Age', '5', 'Surrogate-Key', 'a b', 'ETag', '"1"'], 42, ['surrogate-key'])
  assert.deepEqual(out, ['Content-Type', 'text/plain', 'ETag', '"1"', 'age', '42'])
})

test('notModifiedHeaders: only the fields a 304 carries (RFC 9110 §15.4.5), plus Cache-Status', () => {
  const full = ['content-type', 'text/plain', 'content-length', '5', 'etag', '"1"', 'cache-control', 'max-age=60', 'date', 'x', 'age', '3', 'vary', 'accept', 'expires', 'y', 'content-location', '/a', 'last-modified', 'z', 'set-cookie', 'no']
  assert.deepEqual(notModifiedHeaders(full, 'Portico; hit'),
    ['etag', '"1"', 'cache-control', 'max-age=60', 'date', 'x', 'age', '3', 'vary', 'accept', 'expires', 'y', 'content-location', '/a', 'last-modified', 'z', 'cache-status', 'Portico; hit'])
})
