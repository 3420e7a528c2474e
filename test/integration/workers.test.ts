/**
 * `--workers 2` (src/cli/cluster.ts) with real processes: both workers serve; the primary's /metrics sums them; a
 * worker killed is replaced with no client error; a rolling restart under load fails no request; SIGTERM drains and
 * exits 0. Every loop is bounded.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startOrigin, send, startCli, runCli } from '../helpers/servers.js'
import { load } from '../helpers/load.js'
import { eventually } from '../helpers/poll.js'
import { freePort } from '../helpers/redis.js'

interface WorkerInfo { pid: number, ready: boolean }

/** One GET on a fresh connection (no keep-alive), answered within 5 s or counted as failed (-1). */
function fresh (url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(-1))
  })
}

test('--workers 2: both serve, metrics summed, a killed worker replaced without a client error, a rolling restart under load, reloads reach every worker, SIGTERM', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('node'))
  t.after(() => origin.close())
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-workers-'))
  const file = path.join(dir, 'portico.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  const config = (extra: string): string => `watch: false\nlisten: [{ host: 127.0.0.1, port: ${port} }]\nadmin: { port: ${adminPort} }\nlog: { access: false }\nroutes:\n${extra}  - { host: "*", upstream: ["${origin.url}"] }\n`
  writeFileSync(file, config(''))
  const cli = await startCli(['--config', file, '--workers', '2'])
  let exited = false
  t.after(async () => {
    if (!exited) {
      cli.child.kill('SIGKILL')
      await cli.exited
    }
  })
  const admin = `http://127.0.0.1:${adminPort}`
  const workers = async (): Promise<WorkerInfo[]> => JSON.parse((await send(`${admin}/workers`)).body.toString()) as WorkerInfo[]
  await eventually('two workers are ready', async () => (await workers()).filter((w) => w.ready).length === 2)
  const first = (await workers()).map((w) => w.pid)

  for (let i = 0; i < 40; i++) assert.equal(await fresh(cli.url), 200)
  const metrics = (await send(`${admin}/metrics`)).body.toString()
  const total = /portico_requests_total\{route="\*",method="GET",status_class="2xx"\} (\d+)/.exec(metrics)
  assert.equal(Number(total?.[1]), 40, 'the primary sums the workers\' counters')
  assert.equal((await send(`${admin}/routes`)).status, 200, 'other admin requests are answered by a worker')

  // A worker killed outright: once the primary has seen it go (a connection handed to it at the instant it died is
  // lost with it), requests on fresh connections keep being answered while a replacement starts.
  process.kill(first[0], 'SIGKILL')
  await eventually('the primary sees the worker gone', async () => !(await workers()).some((w) => w.pid === first[0]))
  const during: number[] = []
  for (let i = 0; i < 40; i++) during.push(await fresh(cli.url))
  assert.deepEqual([...new Set(during)], [200], `every request answered while a worker was replaced: ${JSON.stringify(during)}`)
  await eventually('a replacement worker is ready', async () => {
    const now = await workers()
    return now.filter((w) => w.ready).length === 2 && !now.some((w) => w.pid === first[0])
  }, { ms: 10_000 })

  // A rolling restart while 10 clients load the proxy: no failed request, every worker new.
  const before = (await workers()).map((w) => w.pid)
  const running = load(cli.url, { total: 20_000, concurrency: 10, deadline: 8000 })
  const restart = await runCli(['restart', '--config', file])
  assert.equal(restart.code, 0, restart.stderr)
  const result = await running
  t.diagnostic(`rolling restart under load: ${result.completed} requests ${JSON.stringify(result.statuses)} ${JSON.stringify(result.errors)}`)
  assert.deepEqual(Object.keys(result.statuses), ['200'], `every request answered: ${JSON.stringify(result.statuses)}`)
  const after = (await workers()).map((w) => w.pid)
  assert.equal(after.length, 2)
  assert.ok(after.every((pid) => !before.includes(pid)), `every worker replaced: ${JSON.stringify(before)} → ${JSON.stringify(after)}`)

  // Reloads reach every worker: through the admin API (validated by the primary first), and by SIGHUP.
  const bodies = async (p: string): Promise<string[]> => {
    const out: string[] = []
    for (let i = 0; i < 10; i++) {
      out.push(await new Promise<string>((resolve) => {
        http.get(`${cli.url}${p}`, { agent: false }, (res) => {
          let b = ''
          res.on('data', (c: Buffer) => { b += c.toString() })
          res.on('end', () => resolve(b))
        }).on('error', () => resolve('error'))
      }))
    }
    return [...new Set(out)]
  }
  writeFileSync(file, config('  - { host: "*", path: /v, respond: { status: 200, body: "two" } }\n'))
  const reload = await send(`${admin}/config/reload`, { method: 'POST' })
  assert.equal(reload.status, 200, reload.body.toString())
  assert.deepEqual(await bodies('/v'), ['two'], 'every worker serves the new config')
  writeFileSync(file, 'routes: [{ host: "*", upstream: ["not a url"] }]\n')
  assert.equal((await send(`${admin}/config/reload`, { method: 'POST' })).status, 422, 'the primary refuses an invalid config')
  assert.deepEqual(await bodies('/v'), ['two'])
  writeFileSync(file, config('  - { host: "*", path: /v, respond: { status: 200, body: "three" } }\n'))
  cli.child.kill('SIGHUP')
  await eventually('SIGHUP reaches every worker', async () => JSON.stringify(await bodies('/v')) === '["three"]')

  cli.child.kill('SIGTERM')
  assert.equal(await cli.exited, 0)
  exited = true
})
