import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { ConfigError, createProxy, loadConfigFile, loadConfigText } from '../../src/index.js'
import { FIXTURES } from '../helpers/servers.js'

test('the short form works verbatim: three hosts on path "/", cache off', async () => {
  const text = readFileSync(path.join(FIXTURES, 'short-form.yaml'), 'utf8')
  assert.ok(text.includes('"api.": ["http://localhost:4000"]'))
  const config = await loadConfigText(text)
  assert.deepEqual(config.routes.map((r) => [r.hosts, r.path, r.upstream!.members.map((m) => m.id)]), [
    [['foobar.localhost'], '/', ['http://www.example.com']],
    [['api.'], '/', ['http://localhost:4000']],
    [['slogsdon.com'], '/', ['http://localhost:4001']]
  ])
  assert.deepEqual(config.listen, [{ host: '0.0.0.0', port: 8080, tls: false, http2: false, redirectToHttps: false, maxConnections: 0, maxConnectionsPerIp: 0, backlog: 4096 }])
})

test('short and full forms in one file; defaults applied', async () => {
  const config = await loadConfigText(`
upstreams:
  a.test: ["http://127.0.0.1:1"]
routes:
  - host: a.test
    path: /api/
    stripPrefix: true
    upstream: { nodes: ["http://127.0.0.1:2", "http://127.0.0.1:3"], failTimeout: 2s }
    preserveHost: false
    timeouts: { connect: 1s, response: 2m }
`)
  assert.equal(config.routes.length, 2)
  const r = config.routes[1]
  assert.equal(r.path, '/api')
  assert.equal(r.stripPrefix, true)
  assert.equal(r.preserveHost, false)
  assert.deepEqual(r.timeouts, { connect: 1000, response: 120_000, idle: 60_000 })
  assert.equal(r.upstream!.outlier?.baseEjectionTime, 2000, 'failTimeout is the simple form of passive health')
  assert.equal(r.upstream!.connectTimeout, 1000)
  assert.equal(config.routes[0].preserveHost, true)
})

test('invalid config: every problem with file:line, key path, value and expectation', async () => {
  const file = path.join(FIXTURES, 'invalid.yaml')
  await assert.rejects(loadConfigFile(file), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.code, 'PORTICO_ERR_CONFIG_INVALID')
    const byPath = new Map(err.issues.map((i) => [i.path.join('.'), i]))
    const p = byPath.get('routes.0.path')
    assert.ok(p, err.message)
    assert.equal(p.line, 5)
    assert.match(err.message, /invalid\.yaml:5 {2}routes\.0\.path: expected a path starting with "\/" \(got "api"\)/)
    assert.match(err.message, /invalid\.yaml:6 {2}routes\.0\.upstream\.0: expected an http:\/\/ or https:\/\/ node URL \(got "ftp:\/\/10\.0\.0\.1"\)/)
    assert.match(err.message, /invalid\.yaml:7 {2}routes\.0\.timeouts\.connect: expected a duration .*\(got "soon"\)/)
    assert.match(err.message, /routes\.1\.upstream: expected at least one node/)
    assert.match(err.message, /invalid\.yaml:10 {2}routes\.1\.stripPrefx: unknown key/)
    return true
  })
})

test('meaning pass: duplicate host+path, bad host keys, missing handler modules, a Redis store without a URL', async () => {
  await assert.rejects(loadConfigText(`
upstreams:
  "a.test": ["http://127.0.0.1:1"]
  "b.test:80": ["http://127.0.0.1:1"]
routes:
  - host: A.test
    upstream: ["http://127.0.0.1:2"]
  - host: c.test
    upstream: { handler: ./nope.mjs }
  - host: d.test
    upstream: { handler: ./apps/hello.mjs#notAFunction }
cache: { store: redis }
`, { file: 'x.yaml', baseDir: FIXTURES }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    const msg = err.message
    assert.match(msg, /x\.yaml:6 {2}routes\.0: host "a\.test" path "\/" is already claimed by upstreams\.a\.test/)
    assert.match(msg, /upstreams\.b\.test:80: host keys do not include a port/)
    assert.match(msg, /routes\.1\.upstream\.handler: cannot load handler module "\.\/nope\.mjs": file not found/)
    assert.match(msg, /routes\.2\.upstream\.handler: export "notAFunction" of ".\/apps\/hello\.mjs" is not a/)
    assert.match(msg, /x\.yaml:12 {2}cache\.store: store "redis" needs cache\.redis\.url/)
    return true
  })
})

test('cache: true turns the cache on for every route with the defaults; a route may opt out; settings are checked', async () => {
  const config = await loadConfigText(`
upstreams:
  a.test: ["http://127.0.0.1:1"]
routes:
  - host: b.test
    upstream: ["http://127.0.0.1:2"]
    cache: false
cache: true
`, { file: 'c.yaml' })
  assert.deepEqual(config.routes.map((r) => [r.name, r.cache]), [['a.test', true], ['b.test', false]])
  assert.equal(config.cache?.store, 'memory')
  assert.equal(config.cache?.maxSize, 256 * 1024 * 1024)
  assert.equal(config.cache?.maxObjectSize, 8 * 1024 * 1024)
  assert.deepEqual(config.cache?.targetedFields, ['cdn-cache-control', 'surrogate-control'])

  const off = await loadConfigText(`
upstreams:
  a.test: ["http://127.0.0.1:1"]
routes:
  - host: b.test
    upstream: ["http://127.0.0.1:2"]
    cache: true
cache: { enabled: false, maxSize: 1mb }
`, { file: 'd.yaml' })
  assert.deepEqual(off.routes.map((r) => r.cache), [false, true])
  assert.equal(off.cache?.maxSize, 1024 * 1024)

  await assert.rejects(loadConfigText(`
upstreams:
  a.test: ["http://127.0.0.1:1"]
cache: { maxSize: lots, redis: { url: "http://x" }, name: "two words" }
admin: { port: 9901, tokenEnv: PORTICO_UNSET_TOKEN_FOR_TEST }
`, { file: 'e.yaml' }), (err: unknown) => {
    const msg = (err as Error).message
    assert.match(msg, /cache\.maxSize: expected a size/)
    assert.match(msg, /cache\.name: expected a token/)
    return true
  })
  await assert.rejects(loadConfigText(`
upstreams:
  a.test: ["http://127.0.0.1:1"]
cache: { redis: { url: "http://x" } }
admin: { port: 9901, tokenEnv: PORTICO_UNSET_TOKEN_FOR_TEST }
`, { file: 'f.yaml' }), (err: unknown) => {
    const msg = (err as Error).message
    assert.match(msg, /cache\.redis\.url: expected a redis:\/\/ or rediss:\/\/ URL/)
    assert.match(msg, /admin\.tokenEnv: environment variable PORTICO_UNSET_TOKEN_FOR_TEST is not set/)
    return true
  })
})

test('YAML syntax errors name the line', async () => {
  await assert.rejects(loadConfigText('routes:\n  - host: [a\n', { file: 'bad.yaml' }), /bad\.yaml:\d+ {2}\(top level\): YAML syntax/)
})

test('createProxy validates with the same schema and errors', () => {
  assert.throws(() => createProxy({ routes: [{ host: 'x', upstream: ['not a url'] }] }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.match(err.message, /routes\.0\.upstream\.0: expected a node URL/)
    return true
  })
  assert.throws(() => createProxy({} as never), /no routes/)
})

test('tls.acme challenges: http-01 needs a cleartext listener, tls-alpn-01 works alone, a type listed twice is an error', async () => {
  const acme = (challenges: string) => `
listen: [{ host: 127.0.0.1, port: 8443, tls: true }]
upstreams: { a.test: ["http://127.0.0.1:1"] }
tls: { acme: { email: ops@example.com, storage: { dir: /tmp/portico-acme-config }, challenges: ${challenges} } }
`
  const alone = await loadConfigText(acme('[tls-alpn-01]'))
  assert.deepEqual(alone.tls?.acme?.challenges, ['tls-alpn-01'])
  assert.deepEqual(alone.tls?.acme?.hosts, ['a.test'])
  await assert.rejects(loadConfigText(acme('[http-01]')), (err: ConfigError) => /tls\.acme\.challenges.*cleartext listener.*tls-alpn-01/s.test(err.message))
  await assert.rejects(loadConfigText(acme('[tls-alpn-01, http-01]')), /cleartext listener/)
  await assert.rejects(loadConfigText(acme('[tls-alpn-01, tls-alpn-01]')), /listed twice/)
  await assert.rejects(loadConfigText(acme('[dns-01]')), /tls\.acme\.challenges/)
})
