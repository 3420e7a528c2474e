/**
 * Mount prefixes (src/routing/mount.ts): where a framework mounted the proxy, removing it from the target, and
 * reading it back for X-Forwarded-Prefix.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { isUnder, mountPrefix, mountRequest, segmentsOf, stripSegments, type MountedRequest } from '../../src/routing/mount.js'

const request = (url: string, originalUrl?: string): MountedRequest => ({ url, originalUrl } as unknown as IncomingMessage & { originalUrl?: string })

test('segmentsOf: a prefix as its segments', () => {
  assert.deepEqual(segmentsOf('/api/v1/'), ['api', 'v1'])
  assert.deepEqual(segmentsOf('/'), [])
  assert.deepEqual(segmentsOf(''), [])
})

test('isUnder: whole segments, case-insensitive, parameters match any one segment, the query ignored', () => {
  assert.equal(isUnder('/api', ['api']), true)
  assert.equal(isUnder('/api/x?y', ['api']), true)
  assert.equal(isUnder('/API/x', ['api']), true)
  assert.equal(isUnder('/apix', ['api']), false, 'not a segment boundary')
  assert.equal(isUnder('/ap', ['api']), false)
  assert.equal(isUnder('/t/42/items', ['t', ':id']), true)
  assert.equal(isUnder('/any/x', ['*']), true)
  assert.equal(isUnder('//api//x', ['api']), true, 'repeated slashes')
  assert.equal(isUnder('/x?api', ['api']), false, 'the query is not the path')
  assert.equal(isUnder('/anything', []), true)
})

test('stripSegments: the rest stays byte-exact; an empty rest is "/"', () => {
  assert.equal(stripSegments('/api/x?y', 1), '/x?y')
  assert.equal(stripSegments('/api?y', 1), '/?y')
  assert.equal(stripSegments('/api', 1), '/')
  assert.equal(stripSegments('/API//a%2Fb', 1), '//a%2Fb')
  assert.equal(stripSegments('/t/42/items', 2), '/items')
})

test('mountRequest: keeps the full target in originalUrl, an outer framework\'s value winning', () => {
  const r = request('/google/search?q=1')
  assert.equal(mountRequest(r, ['google']), true)
  assert.deepEqual([r.url, r.originalUrl], ['/search?q=1', '/google/search?q=1'])
  const nested = request('/search?q=1', '/outer/google/search?q=1')
  nested.url = '/google/search?q=1'
  assert.equal(mountRequest(nested, ['google']), true)
  assert.deepEqual([nested.url, nested.originalUrl], ['/search?q=1', '/outer/google/search?q=1'])
})

test('mountRequest: a target outside the prefix is left as it is; no prefix changes nothing', () => {
  const outside = request('/other')
  assert.equal(mountRequest(outside, ['google']), false)
  assert.deepEqual([outside.url, outside.originalUrl], ['/other', undefined])
  const none = request('/x')
  assert.equal(mountRequest(none, []), true)
  assert.deepEqual([none.url, none.originalUrl], ['/x', undefined])
})

test('mountPrefix: read back from originalUrl and url, queries and trailing slashes aside', () => {
  assert.equal(mountPrefix(request('/search?q=1', '/google/search?q=1')), '/google')
  assert.equal(mountPrefix(request('/', '/google')), '/google')
  assert.equal(mountPrefix(request('/?a', '/google/?a')), '/google')
  assert.equal(mountPrefix(request('/x', '/x')), '')
  assert.equal(mountPrefix(request('/x')), '')
  assert.equal(mountPrefix(request('/y', '/a/x')), '', 'not a suffix: no prefix can be told')
})
