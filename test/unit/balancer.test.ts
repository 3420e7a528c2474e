/**
 * Pools (src/balancer/): round-robin over usable members, passive health, and the retry rules read from the error
 * registry. Members are in-test objects implementing Portico's own `Upstream` interface, answering synchronously.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { UpstreamPool } from '../../src/balancer/pool.js'
import { RoundRobin, createPolicy } from '../../src/balancer/policy.js'
import type { DispatchOptions, ResponseHandler, Upstream, UpstreamRequest } from '../../src/upstream/types.js'

type Behaviour = 'ok' | 'refused' | 'reset' | 'throw' | 'timeout' | 'reset-after-head'

/** A member that answers each dispatch with the next behaviour of its script (the last one repeats). */
class Member implements Upstream {
  readonly id: string
  readonly #script: Behaviour[]
  calls: UpstreamRequest[] = []
  constructor (id: string, ...script: Behaviour[]) {
    this.id = id
    this.#script = script.length === 0 ? ['ok'] : script
  }

  dispatch (req: UpstreamRequest, _opts: DispatchOptions, handler: ResponseHandler): void {
    this.calls.push(req)
    const b = this.#script[Math.min(this.calls.length - 1, this.#script.length - 1)]
    if (b === 'throw') throw new Error('dispatch threw')
    handler.onConnect(() => {})
    const fail = (code: string): void => handler.onError(Object.assign(new Error(code), { code }))
    if (b === 'refused') return fail('ECONNREFUSED')
    if (b === 'reset') return fail('ECONNRESET')
    if (b === 'timeout') return fail('UND_ERR_HEADERS_TIMEOUT')
    handler.onHeaders(200, [Buffer.from('x-member'), Buffer.from(this.id)], () => {}, 'OK')
    if (b === 'reset-after-head') return fail('ECONNRESET')
    handler.onComplete(null)
  }

  async close (): Promise<void> {}
}

/** What a handler saw. */
class Recorder implements ResponseHandler {
  attempts: string[] = []
  status = 0
  error: (Error & { code?: string }) | null = null
  completed = false
  onAttempt (id: string): void { this.attempts.push(id) }
  onConnect (): void {}
  onHeaders (status: number): boolean { this.status = status; return true }
  onData (): boolean { return true }
  onComplete (): void { this.completed = true }
  onError (err: Error): void { this.error = err }
}

const OPTS: DispatchOptions = { headersTimeout: 0, bodyTimeout: 0 }
const get = (method = 'GET', body: Readable | null = null): UpstreamRequest => ({ method, path: '/', headers: [], body })

function send (pool: UpstreamPool, req = get()): Recorder {
  const r = new Recorder()
  pool.dispatch(req, OPTS, r)
  return r
}

test('round-robin: each usable member in turn', () => {
  const p = new RoundRobin()
  const all = (): boolean => true
  assert.deepEqual([p.pick(3, all), p.pick(3, all), p.pick(3, all), p.pick(3, all)], [0, 1, 2, 0])
  assert.deepEqual([p.pick(3, (i) => i !== 2), p.pick(3, (i) => i !== 2)], [1, 0], 'skips the unusable one')
  assert.equal(p.pick(3, () => false), -1)
  assert.ok(createPolicy('round-robin') instanceof RoundRobin, 'upstream.policy names the implementation')
})

test('select: excluded members are skipped; -1 when every member is excluded', () => {
  const pool = new UpstreamPool([new Member('a'), new Member('b'), new Member('c')], { failTimeout: 60_000 })
  assert.deepEqual([pool.select(0), pool.select(0), pool.select(0)], [0, 1, 2])
  assert.equal(pool.select(0b001), 1)
  assert.equal(pool.select(0b111), -1)
  const one = new UpstreamPool([new Member('a')], { failTimeout: 60_000 })
  assert.equal(one.select(0), 0)
  assert.equal(one.select(1), -1)
})

test('passive health: a member marked down is skipped for failTimeout; when all are down one is still tried', () => {
  const pool = new UpstreamPool([new Member('a'), new Member('b')], { failTimeout: 60_000 })
  pool.markDown(0)
  assert.deepEqual([pool.select(0), pool.select(0), pool.select(0)], [1, 1, 1])
  pool.markDown(1)
  assert.notEqual(pool.select(0), -1, 'all down: try one anyway, so a recovered node is found')
  const off = new UpstreamPool([new Member('a'), new Member('b')], { failTimeout: 0 })
  off.markDown(0)
  assert.deepEqual([off.select(0), off.select(0)], [0, 1], 'failTimeout 0 disables it')
})

test('a refused connection goes to the next member, which answers; the refusing member is then skipped', () => {
  const a = new Member('a', 'refused')
  const b = new Member('b')
  const pool = new UpstreamPool([a, b], { failTimeout: 60_000 })
  const r = send(pool)
  assert.equal(r.status, 200)
  assert.equal(r.error, null)
  assert.deepEqual(r.attempts, ['a', 'b'], 'onAttempt names each member before its attempt')
  send(pool)
  send(pool)
  assert.equal(a.calls.length, 1, 'marked down by the failure (retry rule "any")')
})

test('a body not read yet is replayed after a connection failure; a body already read never is', () => {
  const fresh = Readable.from([Buffer.from('x')])
  const pool = new UpstreamPool([new Member('a', 'refused'), new Member('b')], { failTimeout: 60_000 })
  assert.equal(send(pool, get('POST', fresh)).status, 200)

  const read = Readable.from([Buffer.from('x')])
  read.read()
  const pool2 = new UpstreamPool([new Member('a', 'refused'), new Member('b')], { failTimeout: 60_000 })
  const r = send(pool2, get('POST', read))
  assert.equal(r.error?.code, 'PORTICO_ERR_UPSTREAM_REFUSED')
  assert.deepEqual(r.attempts, ['a'])
})

test('a reset is retried only for an idempotent method without a body (retry rule "idempotent", RFC 9110 §9.2.2)', () => {
  for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']) {
    const pool = new UpstreamPool([new Member('a', 'reset'), new Member('b')], { failTimeout: 60_000 })
    assert.equal(send(pool, get(method)).status, 200, method)
  }
  const post = new UpstreamPool([new Member('a', 'reset'), new Member('b')], { failTimeout: 60_000 })
  assert.equal(send(post, get('POST')).error?.code, 'PORTICO_ERR_UPSTREAM_RESET')
  const withBody = new UpstreamPool([new Member('a', 'reset'), new Member('b')], { failTimeout: 60_000 })
  assert.equal(send(withBody, get('PUT', Readable.from([Buffer.from('x')]))).error?.code, 'PORTICO_ERR_UPSTREAM_RESET')
})

test('a reset on the only member is tried once more on it (the keep-alive race), then fails', () => {
  const once = new Member('a', 'reset', 'ok')
  assert.equal(send(new UpstreamPool([once], { failTimeout: 60_000 })).status, 200)
  assert.equal(once.calls.length, 2)
  const always = new Member('a', 'reset')
  const r = send(new UpstreamPool([always], { failTimeout: 60_000 }))
  assert.equal(r.error?.code, 'PORTICO_ERR_UPSTREAM_RESET')
  assert.equal(always.calls.length, 2)
})

test('never retried: a failure the registry marks "never", or one after the response head', () => {
  const timeout = new UpstreamPool([new Member('a', 'timeout'), new Member('b')], { failTimeout: 60_000 })
  const r = send(timeout)
  assert.equal(r.error?.code, 'PORTICO_ERR_UPSTREAM_TIMEOUT')
  assert.deepEqual(r.attempts, ['a'])
  const late = new UpstreamPool([new Member('a', 'reset-after-head'), new Member('b')], { failTimeout: 60_000 })
  const r2 = send(late)
  assert.equal(r2.status, 200)
  assert.deepEqual(r2.attempts, ['a'])
  assert.ok(r2.error !== null, 'the failure after the head reaches the handler')
})

test('a member whose dispatch throws counts as a failed attempt', () => {
  const pool = new UpstreamPool([new Member('a', 'throw'), new Member('b')], { failTimeout: 60_000 })
  const r = send(pool)
  assert.equal(r.error?.code, 'PORTICO_ERR_INTERNAL', 'an unknown failure is not retried')
  assert.deepEqual(r.attempts, ['a'])
})

test('attempts are bounded: at most max(2, min(members, 5))', () => {
  const members = Array.from({ length: 8 }, (_, i) => new Member(`m${i}`, 'refused'))
  const r = send(new UpstreamPool(members, { failTimeout: 60_000 }))
  assert.equal(r.error?.code, 'PORTICO_ERR_UPSTREAM_REFUSED')
  assert.equal(r.attempts.length, 5)
})

test('an abort by the client is never retried', () => {
  let calls = 0
  const aborting: Upstream = {
    id: 'a',
    dispatch (_req, _opts, handler) {
      calls++
      handler.onConnect(() => handler.onError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })))
    },
    close: async () => {}
  }
  const r = new Recorder()
  let abort: ((e?: Error) => void) | null = null
  const handler: ResponseHandler = { ...r, onAttempt: (id) => r.onAttempt(id), onConnect: (a) => { abort = a }, onHeaders: () => true, onData: () => true, onComplete: () => {}, onError: (e) => { r.error = e } }
  new UpstreamPool([aborting, new Member('b')], { failTimeout: 60_000 }).dispatch(get(), OPTS, handler)
  assert.ok(abort !== null)
  ;(abort as (e?: Error) => void)()
  assert.equal(calls, 1)
  assert.equal(r.error?.code, 'ECONNRESET', 'the error reaches the handler as it came')
})

test('a pool with no members cannot be built', () => {
  assert.throws(() => new UpstreamPool([], { failTimeout: 0 }), (e: Error & { code?: string }) => e.code === 'PORTICO_ERR_UPSTREAM_UNAVAILABLE')
})
