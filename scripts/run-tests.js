#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node:test. Listing files explicitly keeps the
// same behaviour on Node 20 (directory arguments) and Node 22+ (glob arguments). Extra argv is passed through,
// e.g. `npm test -- --test-name-pattern=routing`; a path filter: `npm test -- integration/routing`.
//
// Timeout: `node --test` gets `--test-timeout=<ms>`, so that a test that hangs fails instead of hanging the run.
// The bound is 60000 ms, or TEST_TIMEOUT_MS from the environment (a whole number of milliseconds; 0: no timeout
// is passed), and a `--test-timeout=<ms>` (or `--test-timeout <ms>`) on the command line wins over both, e.g.
// `npm test -- --test-timeout=5000`. It is only a bound, never a speed target (the slowest test file, the CLI's,
// needs about 12 s on a 2-core machine). What it bounds depends on the Node version: Node 20 (and 22) apply it
// to each test *file* as a whole (when it expires, the file's process is stopped and its remaining tests are
// reported cancelled); Node 24 applies it to each test (nodejs/node#57672).
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'

const DEFAULT_TIMEOUT_MS = 60_000

const root = path.resolve('dist/test')
const files = []
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.test.js')) files.push(p)
  }
}
walk(root)
const args = process.argv.slice(2)
// `--test-timeout <ms>` as two arguments: joined, or the number would be taken for a path filter.
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--test-timeout' && i + 1 < args.length) args.splice(i, 2, `--test-timeout=${args[i + 1]}`)
}
const filters = args.filter((a) => !a.startsWith('-'))
const flags = args.filter((a) => a.startsWith('-'))
const selected = filters.length === 0 ? files : files.filter((f) => filters.some((x) => f.includes(x)))
if (selected.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
if (!flags.some((a) => a === '--test-timeout' || a.startsWith('--test-timeout='))) {
  const fromEnv = process.env.TEST_TIMEOUT_MS
  let ms = DEFAULT_TIMEOUT_MS
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    if (!/^\d+$/.test(fromEnv.trim())) {
      console.error(`TEST_TIMEOUT_MS=${fromEnv}: expected a whole number of milliseconds (0: no timeout)`)
      process.exit(1)
    }
    ms = Number(fromEnv.trim())
  }
  if (ms > 0) flags.unshift(`--test-timeout=${ms}`)
}
const result = spawnSync(process.execPath, ['--test', ...flags, ...selected], { stdio: 'inherit' })
process.exit(result.status ?? 1)
