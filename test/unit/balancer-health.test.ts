/**
 * The pool's state machines without sockets: outlier detection (ejection growth, the cap, the trial request),
 * slow start's share, the affinity helpers (hash keys, sticky cookies), DNS expansion, the replayable body and the
 * active checker's verdicts. Members are in-test objects implementing Portico's own `Upstream` interface.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { Member } from '../../src/balancer/member.js'
import { PassiveHealth } from '../../src/balancer/outlier.js'
import { UpstreamPool, type PoolSettings } from '../../src/balancer/pool.js'
import { cookieValue, hashKeyOf, stickySetCookie, stickyValue } from '../../src/balancer/affinity.js'
import { DnsMembers } from '../../src/balancer/dns.js'
import { ReplayBody } from '../../src/balancer/replay-body.js'
import { ActiveHealth } from '../../src/balancer/health-check.js'
import { loadConfigObjectSync } from '../../src/config/load.js'
import type { MemberSpec, ResolvedOutlier } from '../../src/config/resolved.js'
import type { DispatchOptions, ResponseHandler, Upstream, UpstreamRequest } from '../../src/upstream/types.js'
import { silentLogger } from '../../src/observability/logger.js'
import { eventually } from '../helpers/poll.js'

const noop: Upstream = { id: 'x', dispatch () {}, close: async () => {} }
const member = (id: string): Member => new Member(id, noop, id, 1, 0)

const OUTLIER: ResolvedOutlier = {
  consecutiveFailures: 2, statuses: [503], countResets: true, baseEjectionTime: 1000, maxEjectionTime: 3000, maxEjectedPercent: 50
}

test('outlier: consecutive failures eject; each ejection lasts longer, up to the maximum; success resets the streak', () => {
  const changes: string[] = []
  const passive = new PassiveHealth(OUTLIER, (m, from, to) => changes.push(`${m.id} ${from}→${to}`))
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(member)
  const all = [a, b, c, d]
  passive.failure(all, a, 'x', 0)
  passive.success(a, 0)
  passive.failure(all, a, 'x', 0)
  assert.equal(a.ejectedUntil, 0, 'a success in between: no streak')
  passive.failure(all, a, 'x', 0)
  assert.equal(a.ejectedUntil, 1000, 'first ejection: base')
  // The trial after the cool-down fails: ejected again, for twice the base.
  a.ejectedUntil = 0
  a.trial = true
  passive.failure(all, a, 'x', 2000)
  assert.equal(a.ejectedUntil, 2000 + 2000)
  a.ejectedUntil = 0
  a.trial = true
  passive.failure(all, a, 'x', 5000)
  assert.equal(a.ejectedUntil, 5000 + 3000, 'capped at maxEjectionTime')
  a.ejectedUntil = 0
  a.trial = true
  passive.success(a, 9000)
  assert.equal(a.trial, false)
  assert.deepEqual(changes, ['a healthy→ejected', 'a ejected→ejected', 'a ejected→ejected', 'a ejected→healthy'])
  // maxEjectedPercent 50 of 4 (a is back): two may be out at once, a third may not.
  for (const m of [b, c, d]) { passive.failure(all, m, 'x', 0); passive.failure(all, m, 'x', 0) }
  assert.notEqual(b.ejectedUntil, 0)
  assert.notEqual(c.ejectedUntil, 0)
  assert.equal(d.ejectedUntil, 0, 'the cap keeps half the pool')
  assert.equal(passive.isFailureStatus(503), true)
  assert.equal(passive.isFailureStatus(500), false)
  assert.equal(passive.counts('timeout'), true)
  assert.equal(passive.counts(undefined), false)
})

test('outlier: one node of two can always be ejected; a single node never is', () => {
  const passive = new PassiveHealth({ ...OUTLIER, maxEjectedPercent: 0, consecutiveFailures: 1 }, () => {})
  const [a, b] = [member('a'), member('b')]
  passive.failure([a, b], a, 'x', 0)
  assert.notEqual(a.ejectedUntil, 0)
  const solo = member('s')
  passive.failure([solo], solo, 'x', 0)
  assert.equal(solo.ejectedUntil, 0)
})

function settings (upstream: Record<string, unknown>): PoolSettings {
  const cfg = loadConfigObjectSync({ routes: [{ upstream: { nodes: ['http://127.0.0.1:1'], ...upstream } }] })
  const { members: _m, ...s } = cfg.routes[0].upstream!
  return s
}

const req: UpstreamRequest = { method: 'GET', path: '/', headers: [], body: null }

test('slow start: a recovered member gets a share growing with time since it came back', () => {
  const pool = new UpstreamPool(settings({ slowStart: '100s' }), ['a', 'b'].map((id) => ({ id, upstream: noop, transportKey: id, weight: 1, maxRequests: 0 })))
  const [a] = pool.members
  a.recoveredAt = Date.now() - 25_000
  pool.touch()
  const counts = { a: 0, b: 0 }
  for (let i = 0; i < 4000; i++) counts[pool.pick(req, null, null)!.id as 'a' | 'b']++
  const share = counts.a / counts.b
  assert.ok(share > 0.2 && share < 0.3, `a quarter into slow start: about a quarter of b's share (got ${share.toFixed(3)})`)
  a.recoveredAt = Date.now() - 200_000
  pool.touch()
  const after = { a: 0, b: 0 }
  for (let i = 0; i < 1000; i++) after[pool.pick(req, null, null)!.id as 'a' | 'b']++
  assert.deepEqual(after, { a: 500, b: 500 }, 'after slowStart: the full share')
})

test('members at their own maxRequests are not picked; the pool says why (the queue then waits)', () => {
  const pool = new UpstreamPool(settings({}), ['a', 'b'].map((id) => ({ id, upstream: noop, transportKey: id, weight: 1, maxRequests: 1 })))
  pool.acquire(pool.members[0])
  assert.equal(pool.pick(req, null, null)?.id, 'b')
  pool.acquire(pool.members[1])
  assert.equal(pool.pick(req, null, null), null)
  assert.equal(pool.noPick, 2 /* NoPick.Limited */)
})

test('hash keys: client address, uri, header (any case), cookie and query parameter', () => {
  const r: UpstreamRequest = { method: 'GET', path: '/p?x=1&user=ann%20b', headers: ['X-User', 'u1', 'Cookie', 'a=1; sid="s9"'], body: null, clientAddress: '10.0.0.9' }
  assert.equal(hashKeyOf({ kind: 'client-ip' }, r), '10.0.0.9')
  assert.equal(hashKeyOf({ kind: 'uri' }, r), '/p?x=1&user=ann%20b')
  assert.equal(hashKeyOf({ kind: 'header', name: 'x-user' }, r), 'u1')
  assert.equal(hashKeyOf({ kind: 'cookie', name: 'sid' }, r), 's9')
  assert.equal(hashKeyOf({ kind: 'query', name: 'user' }, r), 'ann b')
  assert.equal(hashKeyOf({ kind: 'query', name: 'none' }, r), null)
  assert.equal(cookieValue(['cookie', 'x=1', 'cookie', 'lb=v'], 'lb'), 'v', 'several Cookie fields')
})

test('sticky values are opaque, stable, and keyed by the secret; the cookie carries the attributes', () => {
  const v = stickyValue('http://10.0.0.7:8080', null)
  assert.match(v, /^[A-Za-z0-9_-]{22}$/)
  assert.equal(stickyValue('http://10.0.0.7:8080', null), v)
  assert.notEqual(stickyValue('http://10.0.0.7:8080', 's3cret'), v)
  assert.ok(!v.includes('10.0.0.7'))
  const s = { cookie: 'lb', ttl: null, secure: null, httpOnly: true, sameSite: 'Strict' as const, path: '/app', secret: null }
  assert.equal(stickySetCookie(s, 'V', false), 'lb=V; Path=/app; HttpOnly; SameSite=Strict')
  assert.equal(stickySetCookie({ ...s, ttl: 90_000, httpOnly: false }, 'V', true), 'lb=V; Path=/app; Max-Age=90; Secure; SameSite=Strict')
})

test('DNS: names expand to one member per address; IPs and localhost are left alone; a failed lookup keeps the last', async () => {
  const spec = (origin: string): MemberSpec => ({ kind: 'node', id: origin, origin, protocol: 'http:', weight: 2, maxRequests: 0 })
  assert.equal(DnsMembers.for([spec('http://127.0.0.1:80'), spec('http://localhost:81')], 1000, silentLogger()), null)
  let answer: string[] | Error = ['10.0.0.1', '::1']
  const lookup = async (): Promise<string[]> => { if (answer instanceof Error) throw answer; return answer }
  const dns = DnsMembers.for([spec('http://api.internal:8080'), spec('http://127.0.0.1:80')], 20, silentLogger(), lookup)!
  assert.deepEqual(dns.current().map((m) => m.id), ['http://api.internal:8080', 'http://127.0.0.1:80'], 'the name itself until the first answer')
  const seen: string[][] = []
  dns.start((specs) => seen.push(specs.map((m) => `${m.id}|${(m as { origin: string }).origin}|${m.weight}|${(m as { authority?: string }).authority ?? ''}`)))
  await eventually('first answer', () => seen.length === 1)
  assert.deepEqual(seen[0], [
    'http://api.internal:8080 (10.0.0.1)|http://10.0.0.1:8080|2|api.internal:8080',
    'http://api.internal:8080 (::1)|http://[::1]:8080|2|api.internal:8080',
    'http://127.0.0.1:80|http://127.0.0.1:80|2|'
  ])
  answer = new Error('SERVFAIL')
  await new Promise((resolve) => setTimeout(resolve, 80))
  assert.equal(seen.length, 1, 'a failure changes nothing')
  assert.equal(dns.current().length, 3)
  answer = ['10.0.0.2']
  await eventually('the new address', () => seen.length === 2)
  assert.deepEqual(seen[1].slice(0, 1), ['http://api.internal:8080 (10.0.0.2)|http://10.0.0.2:8080|2|api.internal:8080'])
  dns.stop()
})

async function drain (r: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of r) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString()
}

test('replay body: each attempt reads the whole body again; a failed attempt never destroys the source', async () => {
  const source = Readable.from([Buffer.from('ab'), Buffer.from('cd')], { objectMode: false })
  const replay = new ReplayBody(source, 100)
  const first = replay.next()!
  first.once('data', () => first.destroy())
  await new Promise((resolve) => first.once('close', resolve))
  assert.equal(source.destroyed, false)
  assert.equal(await drain(replay.next()!), 'abcd')
  assert.equal(await drain(replay.next()!), 'abcd', 'after the end too')
  const big = new ReplayBody(Readable.from([Buffer.alloc(80), Buffer.alloc(80)]), 100)
  await drain(big.next()!)
  assert.equal(big.replayable, false, 'over the limit: not kept')
  assert.equal(big.next(), null)
})

/** An in-test member that answers probes with a status and body. */
class Probed implements Upstream {
  readonly id = 'http://127.0.0.1:9'
  status = 200
  body = 'ok'
  paths: string[] = []
  hosts: string[] = []
  dispatch (r: UpstreamRequest, _o: DispatchOptions, h: ResponseHandler): void {
    this.paths.push(r.path)
    this.hosts.push(r.headers[r.headers.indexOf('host') + 1])
    h.onConnect(() => {})
    h.onHeaders(this.status, [], () => {}, '')
    h.onData(Buffer.from(this.body))
    h.onComplete(null)
  }

  async close (): Promise<void> {}
}

test('active checks: failures in a row take a member out, passes bring it back; expectStatus and expectBody decide', async () => {
  const target = new Probed()
  const m = new Member(target.id, target, 'k', 1, 0)
  const changes: string[] = []
  const checker = new ActiveHealth({
    path: '/healthz', interval: 10, timeout: 1000, unhealthyAfter: 2, healthyAfter: 3, expectStatus: [[200, 299]], expectBody: /"ok"|^ok$/, headers: ['x-probe', '1'], host: null
  }, (mm, from, to, reason) => changes.push(`${from}→${to}: ${reason}`))
  checker.sync([m])
  target.status = 500
  await eventually('unhealthy', () => !m.checkedHealthy)
  assert.match(changes[0], /^healthy→unhealthy: 2 health checks failed, last: status 500/)
  target.status = 200
  target.body = 'degraded'
  await eventually('a body that does not match fails', () => (m.lastError ?? '').includes('body does not match'))
  target.body = 'ok'
  await eventually('healthy again', () => m.checkedHealthy)
  assert.match(changes[1], /^unhealthy→healthy: 3 health checks passed/)
  assert.equal(target.paths[0], '/healthz')
  assert.equal(target.hosts[0], '127.0.0.1:9', "the node's own host")
  checker.close()
})
