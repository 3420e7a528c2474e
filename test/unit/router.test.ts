import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Router, stripPrefix } from '../../src/routing/router.js'
import { normalizeHost } from '../../src/routing/host.js'

interface R { name: string, hosts: string[], path: string }
const r = (name: string, hosts: string[], path = '/'): R => ({ name, hosts, path })

function matchName (router: Router<R>, host: string, target: string): string | null {
  return router.match(host, target)?.route.name ?? null
}

test('host precedence: exact > longest of prefix keys and wildcards > catch-all', () => {
  const router = new Router([
    r('exact', ['api.example.com']),
    r('prefix-api', ['api.']),
    r('prefix-api-eu', ['api.eu.']),
    r('wild', ['*.example.com']),
    r('wild-deep', ['*.eu.example.com']),
    r('all', ['*'])
  ])
  assert.equal(matchName(router, 'api.example.com', '/'), 'exact')
  assert.equal(matchName(router, 'api.other.org', '/'), 'prefix-api')
  assert.equal(matchName(router, 'api.eu.other.org', '/'), 'prefix-api-eu')
  assert.equal(matchName(router, 'www.example.com', '/'), 'wild')
  // "*.example.com" (12 chars of suffix) beats "api." (4): the longest key wins.
  assert.equal(matchName(router, 'api.x.example.com', '/'), 'wild')
  assert.equal(matchName(router, 'a.b.eu.example.com', '/'), 'wild-deep')
  assert.equal(matchName(router, 'example.com', '/'), 'all', 'a wildcard needs at least one label')
  assert.equal(matchName(router, 'api', '/'), 'all', 'a prefix key needs something after its dot')
  assert.equal(matchName(router, 'unrelated.test', '/'), 'all')
})

test('no catch-all: unknown hosts do not match', () => {
  const router = new Router([r('a', ['a.test'])])
  assert.equal(router.match('b.test', '/'), null)
})

test('path prefixes match on segment boundaries, longest first', () => {
  const router = new Router([r('root', ['h'], '/'), r('api', ['h'], '/api'), r('v1', ['h'], '/api/v1')])
  assert.equal(matchName(router, 'h', '/api'), 'api')
  assert.equal(matchName(router, 'h', '/api/'), 'api')
  assert.equal(matchName(router, 'h', '/api/x'), 'api')
  assert.equal(matchName(router, 'h', '/api?x=1'), 'api')
  assert.equal(matchName(router, 'h', '/apix'), 'root')
  assert.equal(matchName(router, 'h', '/api/v1'), 'v1')
  assert.equal(matchName(router, 'h', '/api/v1/users'), 'v1')
  assert.equal(matchName(router, 'h', '/api/v10'), 'api')
  const noRoot = new Router([r('api', ['h'], '/api')])
  assert.equal(noRoot.match('h', '/other'), null)
})

test('stripPrefix keeps the rest byte-exact, query included', () => {
  assert.equal(stripPrefix('/api/x?q=%20', 4), '/x?q=%20')
  assert.equal(stripPrefix('/api?q=1', 4), '/?q=1')
  assert.equal(stripPrefix('/api', 4), '/')
  assert.equal(stripPrefix('/api/', 4), '/')
  assert.equal(stripPrefix('/api/a%2Fb/../c', 4), '/a%2Fb/../c')
  assert.equal(stripPrefix('/anything', 0), '/anything')
})

test('request hosts: case-insensitive, port and trailing dot ignored, junk rejected', () => {
  assert.equal(normalizeHost('Example.COM'), 'example.com')
  assert.equal(normalizeHost('example.com:8080'), 'example.com')
  assert.equal(normalizeHost('example.com.'), 'example.com')
  assert.equal(normalizeHost('example.com.:80'), 'example.com')
  assert.equal(normalizeHost('[::1]:8080'), '[::1]')
  assert.equal(normalizeHost('127.0.0.1:1'), '127.0.0.1')
  assert.equal(normalizeHost('bad host'), null)
  assert.equal(normalizeHost('a/b'), null)
  assert.equal(normalizeHost(''), null)
})

test('describe lists hosts most specific first', () => {
  const router = new Router([r('all', ['*']), r('p', ['api.']), r('w', ['*.example.com']), r('e', ['x.test'])])
  assert.deepEqual(router.describe().map((h) => [h.host, h.kind]), [
    ['x.test', 'exact'], ['*.example.com', 'wildcard'], ['api.', 'prefix'], ['*', 'catch-all']
  ])
})
