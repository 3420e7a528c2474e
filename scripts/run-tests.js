#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node:test. Listing files explicitly keeps the
// same behaviour on Node 20 (directory arguments) and Node 22+ (glob arguments). Extra argv is passed through,
// e.g. `npm test -- --test-name-pattern=routing`; a path filter: `npm test -- integration/routing`.
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'

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
const filters = args.filter((a) => !a.startsWith('-'))
const flags = args.filter((a) => a.startsWith('-'))
const selected = filters.length === 0 ? files : files.filter((f) => filters.some((x) => f.includes(x)))
if (selected.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
const result = spawnSync(process.execPath, ['--test', ...flags, ...selected], { stdio: 'inherit' })
process.exit(result.status ?? 1)
