/**
 * Reloads (docs/admin.md): under load with no failed request while routes and listeners change; listeners opened
 * and closed as the new config says; the CLI reloading on a change of its file (debounced), on SIGHUP and on the
 * admin API, keeping the running config when the new one is invalid.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createProxy, type PorticoConfig } from '../../src/index.js'
import { loadConfigObject } from '../../src/config/load.js'
import { startOrigin, send, startCli } from '../helpers/servers.js'
import { load } from '../helpers/load.js'
import { eventually } from '../helpers/poll.js'
import { freePort } from '../helpers/redis.js'

/** Whether something accepts connections on 127.0.0.1:port. */
async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

test('under load, three reloads (a route added, a listener added, one removed): no failed request, listeners follow the config', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('node'))
  t.after(() => origin.close())
  const [main, extra] = [await freePort(), await freePort()]
  const base: PorticoConfig = { listen: [{ host: '127.0.0.1', port: main }], routes: [{ host: '*', upstream: [origin.url] }], log: { access: false } }
  let next = base
  const proxy = createProxy(base, { configSource: async () => await loadConfigObject(next) })
  await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  const url = `http://127.0.0.1:${main}`

  // 10 clients for at most 5 s (and at most 20,000 requests), while the config changes three times.
  const running = load(url, { total: 20_000, concurrency: 10, deadline: 5000 })
  const reloads: { ok: boolean }[] = []
  await new Promise((resolve) => setTimeout(resolve, 300))
  next = { ...base, routes: [...base.routes!, { host: '*', path: '/status', respond: { status: 200, body: 'up' } }] }
  reloads.push(await proxy.reloadFromSource('test'))
  assert.equal((await send(`${url}/status`)).body.toString(), 'up', 'the added route answers at once')
  next = { ...next, listen: [...next.listen!, { host: '127.0.0.1', port: extra }] }
  reloads.push(await proxy.reloadFromSource('test'))
  assert.equal((await send(`http://127.0.0.1:${extra}/`)).body.toString(), 'node', 'the added listener serves')
  next = { ...next, listen: [{ host: '127.0.0.1', port: extra }, ...base.listen!] }
  reloads.push(await proxy.reloadFromSource('test'))
  const result = await running
  assert.deepEqual(reloads, [{ ok: true }, { ok: true }, { ok: true }])
  t.diagnostic(`${result.completed} requests during the reloads: ${JSON.stringify(result.statuses)}`)
  assert.ok(result.completed > 100, `the load ran (${result.completed})`)
  assert.deepEqual(Object.keys(result.statuses), ['200'], `every request answered 200: ${JSON.stringify(result.statuses)}`)

  // Removing the extra listener: it stops accepting, the main one keeps serving.
  next = base
  assert.deepEqual(await proxy.reloadFromSource('test'), { ok: true })
  // The port is free again (another test's server may take it in the meantime: then it is not this proxy that answers).
  await eventually('the removed listener no longer serves', async () => {
    if (!(await accepts(extra))) return true
    try {
      return (await send(`http://127.0.0.1:${extra}/`)).body.toString() !== 'node'
    } catch {
      return true
    }
  })
  assert.equal((await send(url)).status, 200)
  assert.deepEqual(proxy.addresses.map((a) => a.port), [main])
})

test('the CLI reloads on a change of its file, keeps the running config when the new one is invalid, and on SIGHUP and POST /config/reload', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-reload-'))
  const file = path.join(dir, 'portico.yaml')
  const [port, adminPort] = [await freePort(), await freePort()]
  const write = (body: string): void => writeFileSync(file, `listen: [{ host: 127.0.0.1, port: ${port} }]\nadmin: { port: ${adminPort} }\nroutes:\n  - { host: "*", respond: { status: 200, body: "${body}" } }\n`)
  write('one')
  const cli = await startCli(['--config', file])
  t.after(async () => {
    cli.child.kill('SIGTERM')
    await cli.exited
  })
  const body = async (): Promise<string> => (await send(cli.url)).body.toString()
  assert.equal(await body(), 'one')
  write('two')
  await eventually('a change of the file is picked up', async () => await body() === 'two')
  writeFileSync(file, 'routes: [{ host: "*", upstream: ["not a url"] }]\n')
  await eventually('the invalid file is reported', () => cli.stdout.some((l) => l.includes('config reload failed')))
  assert.equal(await body(), 'two', 'the running config stays')
  write('three')
  await eventually('a valid file is picked up again', async () => await body() === 'three')
  // With the watch off, SIGHUP and the admin API still reload.
  writeFileSync(file, `watch: false\nlisten: [{ host: 127.0.0.1, port: ${port} }]\nadmin: { port: ${adminPort} }\nroutes:\n  - { host: "*", respond: { status: 200, body: "four" } }\n`)
  await eventually('the file with watch: false is loaded', async () => await body() === 'four')
  write('five')
  cli.child.kill('SIGHUP')
  await eventually('SIGHUP reloads', async () => await body() === 'five')
  write('six')
  const r = await send(`http://127.0.0.1:${adminPort}/config/reload`, { method: 'POST' })
  assert.equal(r.status, 200)
  assert.equal(await body(), 'six')
  const m = (await send(`http://127.0.0.1:${adminPort}/metrics`)).body.toString()
  assert.match(m, /portico_config_reloads_total\{result="ok",source="file"\} [1-9]/)
  assert.match(m, /portico_config_reloads_total\{result="failed",source="file"\} [1-9]/)
  assert.match(m, /portico_config_reloads_total\{result="ok",source="signal"\} 1/)
  assert.match(m, /portico_config_reloads_total\{result="ok",source="admin"\} 1/)
})
