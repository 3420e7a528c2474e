#!/usr/bin/env node
// The pool's own cost per request, without sockets: 3 million dispatches through a pool of two in-process members
// that answer synchronously. `node bench/pool-dispatch.mjs [checkout]` measures the build in `checkout` (default: this
// one; run `npm run build` first), so two checkouts can be compared. Pools built before issue #10 took their members
// and `{ failTimeout }`; later ones take resolved settings.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'))
const { UpstreamPool } = await import(path.join(root, 'dist/src/balancer/pool.js'))
const { loadConfigObjectSync } = await import(path.join(root, 'dist/src/config/load.js'))
const raw = [Buffer.from('x'), Buffer.from('y')]
class Member {
  constructor (id) { this.id = id }
  dispatch (_req, _opts, h) { h.onConnect(() => {}); h.onHeaders(200, raw, () => {}, 'OK'); h.onData(raw[0]); h.onComplete(null) }
  async close () {}
}
const members = [new Member('a'), new Member('b')]
const cfg = loadConfigObjectSync({ routes: [{ upstream: { nodes: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] } }] })
const { members: _specs, ...settings } = cfg.routes[0].upstream
const pool = 'key' in settings
  ? new UpstreamPool(settings, members.map((m) => ({ id: m.id, upstream: m, transportKey: m.id, weight: 1, maxRequests: 0 })))
  : new UpstreamPool(members, { failTimeout: 10_000 })
const handler = { onAttempt () {}, onConnect () {}, onHeaders () { return true }, onData () { return true }, onComplete () {}, onError (e) { throw e } }
const req = { method: 'GET', path: '/', headers: ['host', 'x'], body: null, clientAddress: '127.0.0.1', clientTls: false }
const opts = { headersTimeout: 0, bodyTimeout: 0 }
for (let i = 0; i < 200_000; i++) pool.dispatch(req, opts, handler)
const N = 3_000_000
const t0 = process.hrtime.bigint()
for (let i = 0; i < N; i++) pool.dispatch(req, opts, handler)
console.log(`${root}: ${(Number(process.hrtime.bigint() - t0) / N).toFixed(1)} ns per dispatch`)
