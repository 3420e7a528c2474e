/**
 * `npm pack` makes a package that works where it is installed: the tarball holds what the installed command needs
 * and nothing of the tests or benchmarks, and installed into an empty directory (from npm's cache, no network) it
 * serves the demo, checks configs and prints the schema.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { ROOT, send } from '../helpers/servers.js'
import { freePort } from '../helpers/redis.js'
import { eventually } from '../helpers/poll.js'

const run = promisify(execFile)
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

test('npm pack → npm install (offline) → the installed portico serves the demo, checks and prints the schema', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-pack-'))
  // --ignore-scripts: the build this test runs on is already there (prepack would build again).
  const packed = await run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 })
  const [info] = JSON.parse(packed.stdout) as { filename: string, files: { path: string }[] }[]
  const files = info.files.map((f) => f.path)
  for (const needed of ['bin/portico.js', 'dist/src/index.js', 'dist/src/cli/main.js', 'portico.yaml', 'portico.schema.json', 'examples/apps/welcome.mjs', 'package.json']) {
    assert.ok(files.includes(needed), `the package holds ${needed}`)
  }
  assert.equal(files.filter((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.startsWith('test/')).length, 0, 'no tests or benchmarks')

  // An app that depends on the tarball, with a lockfile made from the repository's own (the production packages,
  // as `npm ci` resolved them): `npm ci --offline` then installs from npm's cache, which `npm ci` filled.
  const app = path.join(dir, 'app')
  mkdirSync(app)
  const tarball = readFileSync(path.join(dir, info.filename))
  const repoLock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean, dependencies?: Record<string, string> }> }
  const root = repoLock.packages['']
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies: { portico: `file:../${info.filename}` } },
    'node_modules/portico': { version: '0.1.0', resolved: `file:../${info.filename}`, integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`, dependencies: root.dependencies, bin: { portico: 'bin/portico.js' }, engines: { node: '>=20.18.1' } }
  }
  for (const [key, entry] of Object.entries(repoLock.packages)) if (key !== '' && entry.dev !== true) packages[key] = entry
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', dependencies: { portico: `file:../${info.filename}` } }))
  writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }))
  try {
    await run(NPM, ['ci', '--offline', '--no-audit', '--no-fund', '--omit=dev'], { cwd: app, maxBuffer: 16 * 1024 * 1024 })
  } catch (err) {
    const message = `npm could not install the package offline (a dependency missing from npm's cache?): ${(err as Error).message}`
    if (process.env.CI === 'true') throw new Error(message)
    t.skip(`!!!!!!!! ${message} !!!!!!!!`)
    return
  }
  const bin = path.join(app, 'node_modules/.bin/portico')
  const schema = await run(bin, ['schema'], { cwd: app, maxBuffer: 4 * 1024 * 1024 })
  assert.equal((JSON.parse(schema.stdout) as { title: string }).title, 'Portico configuration')
  const installed = path.join(app, 'node_modules/portico')
  const check = await run(bin, ['check', '--config', path.join(installed, 'portico.yaml')], { cwd: installed })
  assert.match(check.stdout, /portico\.yaml: OK/)

  const port = await freePort()
  const child = spawn(bin, ['--config', path.join(installed, 'portico.yaml'), '--port', String(port), '--host', '127.0.0.1'], { cwd: installed, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.after(async () => {
    child.kill('SIGTERM')
    await exited
  })
  await eventually('the installed portico serves the demo', async () => {
    try {
      const r = await send(`http://127.0.0.1:${port}/`)
      return r.status === 200 && /portico/i.test(r.body.toString())
    } catch {
      return false
    }
  }, { ms: 15_000 })
  assert.equal((await send(`http://127.0.0.1:${port}/healthz`)).body.toString(), 'ok\n')
})
