/**
 * What observers see: W3C Trace Context propagation (continued, started, refused inputs, off), the combined access
 * log format from the CLI, and the diagnostics channels APM tools subscribe to.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import diagnosticsChannel from 'node:diagnostics_channel'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startOrigin, startProxy, send, startCli } from '../helpers/servers.js'
import { eventually } from '../helpers/poll.js'
import { freePort } from '../helpers/redis.js'
import { parseTraceparent } from '../../src/observability/trace-context.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

test('tracing: a valid traceparent is continued with a new span id; none, an invalid one or two start a trace; tracestate follows its trace', async (t) => {
  const origin = await startOrigin((req, res) => res.end(JSON.stringify({ tp: req.headers.traceparent, ts: req.headers.tracestate })))
  t.after(() => origin.close())
  const p = await startProxy({ tracing: true, log: { access: true }, routes: [{ host: '*', upstream: [origin.url] }] })
  t.after(() => p.close())
  const seen = async (headers: Record<string, string | string[]>): Promise<{ tp?: string, ts?: string }> => JSON.parse((await send(p.url, { headers })).body.toString()) as { tp?: string, ts?: string }

  const continued = await seen({ traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=abc' })
  const c = parseTraceparent(continued.tp!)!
  assert.equal(c.traceId, TRACE)
  assert.notEqual(c.parentId, PARENT, 'the node\'s parent is Portico\'s span')
  assert.equal(c.flags, 1)
  assert.equal(continued.ts, 'vendor=abc')
  const line = p.logs.find((l) => l.traceId === TRACE)
  assert.ok(line !== undefined, 'the access line carries the trace id')
  assert.equal(line.spanId, c.parentId)

  const unsampled = parseTraceparent((await seen({ traceparent: `00-${TRACE}-${PARENT}-00` })).tp!)!
  assert.equal(unsampled.flags, 0, 'the client\'s sampling decision stands')

  for (const bad of [undefined, `00-${TRACE.toUpperCase()}-${PARENT}-01`, `00-${'0'.repeat(32)}-${PARENT}-01`, `ff-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01-extra`, 'garbage']) {
    const got = await seen(bad === undefined ? { tracestate: 'stale=1' } : { traceparent: bad, tracestate: 'stale=1' })
    const started = parseTraceparent(got.tp!)
    assert.ok(started !== null, `a valid traceparent is sent (${String(bad)})`)
    assert.notEqual(started.traceId, TRACE)
    assert.equal(started.flags, 1)
    assert.equal(got.ts, undefined, 'the tracestate of another trace is dropped')
  }
  const two = await seen({ traceparent: [`00-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01`] })
  assert.notEqual(parseTraceparent(two.tp!)!.traceId, TRACE, 'two traceparent fields are invalid')
  // A later version is read as 00 is and answered as 00.
  const later = parseTraceparent((await seen({ traceparent: `01-${TRACE}-${PARENT}-03-more` })).tp!)!
  assert.deepEqual([later.traceId, later.flags], [TRACE, 1])
})

test('tracing off (the default): traceparent passes to the node untouched and nothing is started', async (t) => {
  const origin = await startOrigin((req, res) => res.end(String(req.headers.traceparent)))
  t.after(() => origin.close())
  const p = await startProxy({ log: { access: true }, routes: [{ host: '*', upstream: [origin.url] }] })
  t.after(() => p.close())
  assert.equal((await send(p.url, { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })).body.toString(), `00-${TRACE}-${PARENT}-01`)
  assert.equal((await send(p.url)).body.toString(), 'undefined')
  assert.equal(p.logs.some((l) => 'traceId' in l), false)
  const start = await startProxy({ tracing: { start: false }, routes: [{ host: '*', upstream: [origin.url] }] })
  t.after(() => start.close())
  assert.equal((await send(start.url)).body.toString(), 'undefined', 'start: false only continues traces')
})

test('log.format combined: one Apache/nginx combined line per request, plus request id, error code and duration', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-combined-'))
  const file = path.join(dir, 'portico.yaml')
  const port = await freePort()
  writeFileSync(file, `listen: [{ host: 127.0.0.1, port: ${port} }]\nlog: { format: combined }\nroutes:\n  - { host: ok.test, respond: { status: 200, body: "hello" } }\n`)
  const cli = await startCli(['--config', file])
  t.after(async () => {
    cli.child.kill('SIGTERM')
    await cli.exited
  })
  await send(cli.url, { path: '/a?b=1', headers: { host: 'ok.test', referer: 'https://ref.example/"x"', 'user-agent': 'curl/8.5.0' } })
  await send(cli.url, { path: '/missing', headers: { host: 'nowhere.test' } })
  await eventually('two access lines', () => cli.stdout.filter((l) => l.startsWith('127.0.0.1 - - [')).length === 2)
  const [ok, missing] = cli.stdout.filter((l) => l.startsWith('127.0.0.1 - - ['))
  assert.match(ok, /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/a\?b=1 HTTP\/1\.1" 200 5 "https:\/\/ref\.example\/\\x22x\\x22" "curl\/8\.5\.0" "[0-9a-z-]+" "-" \d+\.\d{3}$/)
  assert.match(missing, /"GET \/missing HTTP\/1\.1" 404 \d+ "-" "-" "[0-9a-z-]+" "PORTICO_ERR_NO_ROUTE" /)
})

test('diagnostics channels: request start and end, each upstream attempt, the cache result', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.setHeader('cache-control', 'max-age=60')
    res.end('ok')
  })
  t.after(() => origin.close())
  const p = await startProxy({ cache: true, routes: [{ host: 'c.test', upstream: [origin.url] }] })
  t.after(() => p.close())
  const got: Record<string, unknown[]> = { start: [], end: [], attempt: [], cache: [] }
  const subs: [string, (m: unknown) => void][] = [
    ['portico:request:start', (m) => got.start.push(m)],
    ['portico:request:end', (m) => got.end.push(m)],
    ['portico:upstream:attempt', (m) => got.attempt.push(m)],
    ['portico:cache:result', (m) => got.cache.push(m)]
  ]
  for (const [name, fn] of subs) diagnosticsChannel.subscribe(name, fn)
  t.after(() => { for (const [name, fn] of subs) diagnosticsChannel.unsubscribe(name, fn) })
  await send(p.url, { headers: { host: 'c.test' } })
  await send(p.url, { headers: { host: 'c.test' } })
  const mine = (list: unknown[]): Record<string, unknown>[] => (list as Record<string, unknown>[]).filter((m) => m.id !== undefined || m.record !== undefined)
  assert.equal(mine(got.start).length, 2)
  const starts = got.start as { method: string, host: string, route: string, upgrade: boolean }[]
  assert.deepEqual([starts[0].method, starts[0].host, starts[0].route, starts[0].upgrade], ['GET', 'c.test', 'c.test', false])
  const ends = got.end as { record: { status: number, route: string, cache?: string } }[]
  assert.deepEqual(ends.map((e) => e.record.status), [200, 200])
  assert.equal(got.attempt.length, 1, 'one upstream attempt: the second request is a cache hit')
  const caches = got.cache as { cacheStatus: string }[]
  assert.equal(caches.length, 2)
  assert.match(caches[1].cacheStatus, /hit/)
  assert.ok((got.end as { proxy: unknown }[]).every((e, i) => e.proxy === (got.start[i] as { proxy: unknown }).proxy), 'one proxy token')
})
