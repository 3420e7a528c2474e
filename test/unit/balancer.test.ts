/**
 * Pools (src/balancer/): selection over usable members, passive health, and the retry rules read from the error
 * registry. Members are in-test objects implementing Portico's own `Upstream` interface, answering synchronously.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { UpstreamPool, type PoolSettings } from '../../src/balancer/pool.js'
import { loadConfigObjectSync } from '../../src/config/load.js'
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

/** A pool's settings as the config resolves them (real defaults), with `upstream` options on top; no backoff unless asked. */
function settingsFor (upstream: Record<string, unknown> = {}): PoolSettings {
  const retry = { backoff: 0, ...(upstream.retry as object | undefined) }
  const cfg = loadConfigObjectSync({ routes: [{ upstream: { nodes: ['http://127.0.0.1:1'], ...upstream, retry } }] })
  const { members: _members, ...settings } = cfg.routes[0].upstream!
  return settings
}

/** A pool over in-test members, each with weight 1. */
function poolOf (members: Upstream[], upstream: Record<string, unknown> = {}): UpstreamPool {
  return new UpstreamPool(settingsFor(upstream), members.map((m) => ({ id: m.id, upstream: m, transportKey: m.id, weight: 1, maxRequests: 0 })))
}

function send (pool: UpstreamPool, req = get()): Recorder {
  const r = new Recorder()
  pool.dispatch(req, OPTS, r)
  return r
}

test('select: a member already tried by the request is skipped; none left: no pick', () => {
  const pool = poolOf([new Member('a'), new Member('b'), new Member('c')])
  const ids = (tried: number[]): string | null => pool.pick(get(), tried.map((i) => pool.members[i]), null)?.id ?? null
  assert.deepEqual([ids([]), ids([]), ids([])], ['a', 'b', 'c'])
  assert.equal(ids([0]), 'b')
  assert.equal(ids([0, 1, 2]), null)
  const one = poolOf([new Member('a')])
  assert.equal(one.pick(get(), null, null)?.id, 'a')
  assert.equal(one.pick(get(), [one.members[0]], null), null)
})

test('passive health (failTimeout): a member that failed to connect is skipped; the last usable one never is', () => {
  const a = new Member('a', 'refused')
  const b = new Member('b', 'refused')
  const c = new Member('c')
  const pool = poolOf([a, b, c], { failTimeout: 60_000 })
  for (let i = 0; i < 6; i++) assert.equal(send(pool).status, 200)
  assert.equal(a.calls.length, 1, 'ejected after its first failure')
  assert.equal(pool.members[0].status, 'ejected')
  // maxEjectedPercent 50% of 3 members: one ejection at a time, so b stays in rotation (and fails over to c).
  assert.equal(pool.members[1].status, 'healthy')
  assert.ok(b.calls.length >= 2)
  const off = poolOf([new Member('a', 'refused'), new Member('b')], { failTimeout: 0 })
  send(off)
  send(off)
  assert.equal(off.members[0].status, 'healthy', 'failTimeout 0 disables it')
})

test('a refused connection goes to the next member, which answers; the refusing member is then skipped', () => {
  const a = new Member('a', 'refused')
  const b = new Member('b')
  const pool = poolOf([a, b], { failTimeout: 60_000 })
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
  const pool = poolOf([new Member('a', 'refused'), new Member('b')], { failTimeout: 60_000 })
  assert.equal(send(pool, get('POST', fresh)).status, 200)

  const read = Readable.from([Buffer.from('x')])
  read.read()
  const pool2 = poolOf([new Member('a', 'refused'), new Member('b')], { failTimeout: 60_000 })
  const r = send(pool2, get('POST', read))
  assert.equal(r.error?.code, 'PORTICO_ERR_UPSTREAM_REFUSED')
  assert.deepEqual(r.attempts, ['a'])
})

test('a reset is retried only for an idempotent method (retry rule "idempotent", RFC 9110 §9.2.2), its body kept for replay', () => {
  for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']) {
    const pool = poolOf([new Member('a', 'reset'), new Member('b')], { failTimeout: 60_000 })
    assert.equal(send(pool, get(method)).status, 200, method)
  }
  const post = poolOf([new Member('a', 'reset'), new Member('b')], { failTimeout: 60_000 })
  assert.equal(send(post, get('POST')).error?.code, 'PORTICO_ERR_UPSTREAM_RESET')
  const b = new Member('b')
  const withBody = poolOf([new Member('a', 'reset'), b], { failTimeout: 60_000 })
  const body = Readable.from([Buffer.from('x')])
  assert.equal(send(withBody, get('PUT', body)).status, 200)
  assert.notEqual(b.calls[0].body, body, 'the replay is a stream of the kept body')
  const off = poolOf([new Member('a', 'reset'), new Member('b')], { retry: { on: ['connect-failure'] } })
  assert.equal(send(off, get('PUT', Readable.from([Buffer.from('x')]))).error?.code, 'PORTICO_ERR_UPSTREAM_RESET', 'reset not in retry.on')
})

test('a reset on the only member is tried once more on it (the keep-alive race), then fails', () => {
  const once = new Member('a', 'reset', 'ok')
  assert.equal(send(poolOf([once], { failTimeout: 60_000 })).status, 200)
  assert.equal(once.calls.length, 2)
  const always = new Member('a', 'reset')
  const r = send(poolOf([always], { failTimeout: 60_000 }))
  assert.equal(r.error?.code, 'PORTICO_ERR_UPSTREAM_RESET')
  assert.equal(always.calls.length, 2)
})

test('never retried: a failure the registry marks "never", or one after the response head', () => {
  const timeout = poolOf([new Member('a', 'timeout'), new Member('b')], { failTimeout: 60_000 })
  const r = send(timeout)
  assert.equal(r.error?.code, 'PORTICO_ERR_UPSTREAM_TIMEOUT')
  assert.deepEqual(r.attempts, ['a'])
  const late = poolOf([new Member('a', 'reset-after-head'), new Member('b')], { failTimeout: 60_000 })
  const r2 = send(late)
  assert.equal(r2.status, 200)
  assert.deepEqual(r2.attempts, ['a'])
  assert.ok(r2.error !== null, 'the failure after the head reaches the handler')
})

test('a member whose dispatch throws counts as a failed attempt', () => {
  const pool = poolOf([new Member('a', 'throw'), new Member('b')], { failTimeout: 60_000 })
  const r = send(pool)
  assert.equal(r.error?.code, 'PORTICO_ERR_INTERNAL', 'an unknown failure is not retried')
  assert.deepEqual(r.attempts, ['a'])
})

test('attempts are bounded by retry.attempts (default 3, the first included)', () => {
  const members = Array.from({ length: 8 }, (_, i) => new Member(`m${i}`, 'refused'))
  const r = send(poolOf(members, { failTimeout: 60_000 }))
  assert.equal(r.error?.code, 'PORTICO_ERR_UPSTREAM_REFUSED')
  assert.equal(r.attempts.length, 3)
  const five = send(poolOf(members.map((m) => new Member(m.id, 'refused')), { retry: { attempts: 5, backoff: 0 } }))
  assert.equal(five.attempts.length, 5)
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
  poolOf([aborting, new Member('b')], { failTimeout: 60_000 }).dispatch(get(), OPTS, handler)
  assert.ok(abort !== null)
  ;(abort as (e?: Error) => void)()
  assert.equal(calls, 1)
  assert.equal(r.error?.code, 'ECONNRESET', 'the error reaches the handler as it came')
})

test('a pool with no members cannot be built', () => {
  assert.throws(() => poolOf([], { failTimeout: 0 }), (e: Error & { code?: string }) => e.code === 'PORTICO_ERR_UPSTREAM_UNAVAILABLE')
})
