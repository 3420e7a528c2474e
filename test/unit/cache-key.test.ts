/**
 * The cache key (src/cache/key.ts): one spelling for lookups, invalidation and purges.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cacheKey, purgeFilter, urlKey } from '../../src/cache/key.js'

test('the primary key is GET and the effective request URI with the routing host (RFC 9111 §2)', () => {
  assert.equal(cacheKey('https', 'example.com', '/a?b=1'), 'GET https://example.com/a?b=1')
})

test('urlKey: an absolute URL keeps its target byte-exact; the host is normalised as routing does it', () => {
  assert.deepEqual(urlKey('http://Example.COM:8080/a/../%2e/b?x=1#frag'), { key: 'GET http://example.com/a/../%2e/b?x=1', host: 'example.com' })
  assert.deepEqual(urlKey('https://example.com./x'), { key: 'GET https://example.com/x', host: 'example.com' })
  assert.equal(urlKey('http://example.com')?.key, 'GET http://example.com/')
  assert.equal(urlKey('http://example.com?q')?.key, 'GET http://example.com/?q')
  assert.equal(urlKey('http://[::1]:9/v')?.key, 'GET http://[::1]/v')
})

test('urlKey: relative references resolve against the base; an absolute path stays as written', () => {
  assert.equal(urlKey('/other?z', 'http://example.com/a/b')?.key, 'GET http://example.com/other?z')
  assert.equal(urlKey('c', 'http://example.com/a/b')?.key, 'GET http://example.com/a/c')
  assert.equal(urlKey('//elsewhere.test/p', 'http://example.com/a')?.key, 'GET http://elsewhere.test/p')
})

test('urlKey: anything that is not an http(s) URL is null', () => {
  assert.equal(urlKey('ftp://example.com/a'), null)
  assert.equal(urlKey('mailto:a@example.com'), null)
  assert.equal(urlKey('not a url'), null)
})

test('purgeFilter: a URL becomes its key; a host is normalised; a tag stays', () => {
  assert.deepEqual(purgeFilter({ url: 'https://Example.com:443/docs?a' }), { key: 'GET https://example.com/docs?a' })
  assert.deepEqual(purgeFilter({ host: 'Example.com:8080', prefix: '/docs/' }), { host: 'example.com', pathPrefix: '/docs/' })
  assert.deepEqual(purgeFilter({ tag: 'product-42' }), { tag: 'product-42' })
  assert.throws(() => purgeFilter({ url: 'ftp://x/' }), TypeError)
})
