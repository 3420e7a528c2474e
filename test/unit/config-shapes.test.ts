/**
 * Config helpers that do not need files: host keys (src/routing/host.ts) and the one-route shorthand
 * (src/config/one-route.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { normalizeHostKey } from '../../src/routing/host.js'
import { oneRouteConfig } from '../../src/config/one-route.js'

test('host keys: every accepted form, lower-cased', () => {
  assert.deepEqual(normalizeHostKey('*'), { key: '*' })
  assert.deepEqual(normalizeHostKey('Example.COM'), { key: 'example.com' })
  assert.deepEqual(normalizeHostKey(' api. '), { key: 'api.' })
  assert.deepEqual(normalizeHostKey('*.Example.com'), { key: '*.example.com' })
  assert.deepEqual(normalizeHostKey('10.0.0.1'), { key: '10.0.0.1' })
  assert.deepEqual(normalizeHostKey('[::1]'), { key: '[::1]' })
  assert.deepEqual(normalizeHostKey('under_score.test'), { key: 'under_score.test' })
})

test('host keys: each refusal says what was expected', () => {
  for (const bad of ['example.com:8080', '*.', '*.-bad.com', 'a..b', '-lead.com', 'sp ace.com', '.api.', 'x.*.com']) {
    const r = normalizeHostKey(bad)
    assert.ok('error' in r, bad)
  }
  assert.match((normalizeHostKey('example.com:80') as { error: string }).error, /port/)
})

test('the one-route shorthand: every host, path "/", top-level settings kept beside the route, redirects mapped back to the mount', () => {
  const hooks = { onRequest: () => undefined }
  assert.deepEqual(oneRouteConfig({ upstream: ['http://127.0.0.1:1'], stripPrefix: true, timeouts: { connect: '1s' }, log: { access: false }, hooks }), {
    routes: [{ upstream: ['http://127.0.0.1:1'], stripPrefix: true, host: '*', path: '/', rewriteRedirects: true, rewriteCookies: true }],
    timeouts: { connect: '1s' },
    headers: undefined,
    limits: undefined,
    log: { access: false },
    hooks
  })
})
