/**
 * What a proxy loads (docs/performance.md, "Memory"): a config that does not use a feature does not pay for its
 * code. Each case runs a fresh Node process that starts a Proxy for one config, sends one request through it, and
 * reports which CommonJS modules and Node built-ins it loaded.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT } from '../helpers/servers.js'

interface Loaded {
  status: number
  modules: string[]
  builtins: string[]
}

/** Starts a proxy whose one route has `routeExtra`'s keys (and the config `topLevel`'s) in a fresh process and lists what it loaded. */
function loadedBy (routeExtra: Record<string, unknown> | null, topLevel: Record<string, unknown> = {}): Promise<Loaded> {
  const index = pathToFileURL(path.join(ROOT, 'dist/src/index.js')).href
  const script = routeExtra === null ? BARE : `
import http from 'node:http'
import { createRequire } from 'node:module'
const { createProxy } = await import(${JSON.stringify(index)})
const origin = http.createServer((req, res) => { res.setHeader('content-type', 'text/plain'); res.end('ok') })
await new Promise((r) => origin.listen(0, '127.0.0.1', r))
const auth = http.createServer((req, res) => { res.statusCode = 204; res.end() })
await new Promise((r) => auth.listen(0, '127.0.0.1', r))
const extra = JSON.parse(${JSON.stringify(JSON.stringify(routeExtra))}.replace('AUTH_PORT', String(auth.address().port)))
const top = JSON.parse(${JSON.stringify(JSON.stringify(topLevel))})
const proxy = createProxy({ listen: [{ host: '127.0.0.1', port: 0 }], log: { access: false }, ...top,
  routes: [{ host: '*', upstream: ['http://127.0.0.1:' + origin.address().port], ...extra }] })
const [address] = await proxy.listen()
const status = await new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port: address.port, path: '/', agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)) }).on('error', reject)
})
const modules = Object.keys(createRequire(import.meta.url).cache)
const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length))
process.stdout.write(JSON.stringify({ status, modules, builtins }))
await proxy.close()
origin.close()
auth.close()
`
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout) as Loaded)
    })
  })
}

/** The same requests without Portico: what Node itself loads for an HTTP server and client (it differs by version). */
const BARE = `
import http from 'node:http'
const origin = http.createServer((req, res) => { res.end('ok') })
await new Promise((r) => origin.listen(0, '127.0.0.1', r))
const status = await new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port: origin.address().port, path: '/', agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)) }).on('error', reject)
})
const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length))
process.stdout.write(JSON.stringify({ status, modules: [], builtins }))
origin.close()
`

/** Whether Portico's process loaded the built-in `name` where a bare Node process does not. */
const added = (r: Loaded, bare: Loaded, name: string): boolean => r.builtins.includes(name) && !bare.builtins.includes(name)

const within = (modules: string[], part: string): string[] => modules.filter((m) => m.includes(`${path.sep}node_modules${path.sep}${part}`))

test('a plain route loads undici\'s pool and connector, not its package entry, fetch, WebSocket or Node\'s bundled copy', async () => {
  const [r, bare] = await Promise.all([loadedBy({}), loadedBy(null)])
  assert.equal(r.status, 200)
  assert.ok(within(r.modules, path.join('undici', 'lib', 'dispatcher', 'pool.js')).length === 1, 'the pool is loaded')
  assert.deepEqual(within(r.modules, path.join('undici', 'index.js')), [])
  assert.deepEqual(within(r.modules, path.join('undici', 'lib', 'web')), [])
  assert.ok(!added(r, bare, 'internal/deps/undici/undici'), 'Node\'s own undici stays unloaded (unless Node loads it anyway)')
})

test('a plain route loads no Redis client, metrics library, password hasher, ACME client, certificate generator or zlib', async () => {
  const [r, bare] = await Promise.all([loadedBy({}), loadedBy(null)])
  assert.equal(r.status, 200)
  for (const name of ['ioredis', 'prom-client', 'bcryptjs', 'acme-client', 'selfsigned']) assert.deepEqual(within(r.modules, `${name}${path.sep}`), [], name)
  assert.ok(!added(r, bare, 'zlib'), 'node:zlib stays unloaded (unless Node loads it anyway)')
})

test('the features load what they need when a config uses them (the checks above can fail)', async () => {
  const [r, bare] = await Promise.all([loadedBy({ forwardAuth: { url: 'http://127.0.0.1:AUTH_PORT/auth' }, compress: true }), loadedBy(null)])
  assert.equal(r.status, 200)
  assert.equal(within(r.modules, path.join('undici', 'index.js')).length, 1, 'forwardAuth asks through undici\'s request API')
  // Where Node itself loads zlib (Node 24 does), there is nothing to see.
  if (!bare.builtins.includes('zlib')) assert.ok(r.builtins.includes('zlib'), 'compression loads node:zlib')
})
