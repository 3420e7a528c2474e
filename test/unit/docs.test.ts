import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { renderErrorsDoc } from '../../src/errors-doc.js'
import { parse } from 'yaml'
import { configSchema } from '../../src/config/schema.js'
import { DEFAULTS } from '../../src/config/defaults.js'
import { parseDuration, parseSize } from '../../src/config/units.js'
import { ROOT } from '../helpers/servers.js'

test('docs/errors.md matches the error registry (regenerate: node scripts/gen-errors-doc.js)', () => {
  assert.equal(readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8'), renderErrorsDoc())
})

test('docs/config.md documents every config key of the schema', () => {
  const doc = readFileSync(path.join(ROOT, 'docs/config.md'), 'utf8')
  const keys = new Set<string>()
  const walk = (schema: unknown, prefix: string): void => {
    let s = schema as { def?: { type?: string, innerType?: unknown, in?: unknown, shape?: Record<string, unknown>, options?: unknown[], element?: unknown, schema?: unknown } }
    // Unwrap optional/pipe/transform/refinement wrappers.
    for (let i = 0; i < 10 && s?.def; i++) {
      const d = s.def
      if (d.type === 'optional' || d.type === 'default' || d.type === 'nullable') s = d.innerType as typeof s
      else if (d.type === 'pipe') s = d.in as typeof s
      else break
    }
    const d = s?.def
    if (!d) return
    if (d.type === 'object' && d.shape) {
      for (const [k, v] of Object.entries(d.shape)) {
        const key = prefix === '' ? k : `${prefix}.${k}`
        keys.add(key)
        walk(v, key)
      }
    } else if (d.type === 'array') {
      walk(d.element, prefix)
    } else if (d.type === 'union' && d.options) {
      for (const o of d.options) walk(o, prefix)
    }
  }
  walk(configSchema, '')
  assert.ok(keys.size > 20)
  const missing = [...keys].filter((k) => !doc.includes(`\`${k}\``))
  assert.deepEqual(missing, [], `undocumented keys: ${missing.join(', ')}`)
})

/** A default as docs/config.md writes it (a code span), read as the code holds it. */
function docValue (text: string, expected: unknown): unknown {
  if (typeof expected === 'string') return text.replace(/^"(.*)"$/, '$1')
  if (typeof expected === 'boolean') return text === 'true' ? true : text === 'false' ? false : text
  if (typeof expected === 'number') {
    if (/^\d+(\.\d+)?$/.test(text)) return Number(text)
    return /b$/i.test(text) ? parseSize(text) : parseDuration(text)
  }
  return parse(text)
}

test('docs/config.md shows every default of config/defaults.ts, as the code applies it', () => {
  const rows = new Map<string, string>()
  for (const line of readFileSync(path.join(ROOT, 'docs/config.md'), 'utf8').split('\n')) {
    const m = /^\| `([^`]+)` \| ([^|]*) \|/.exec(line)
    if (m !== null) rows.set(m[1], m[2].trim())
  }
  const wrong: string[] = []
  for (const [key, value] of Object.entries(DEFAULTS)) {
    const cell = rows.get(key)
    const span = cell === undefined ? null : /^`([^`]*)`$/.exec(cell)
    if (span === null) {
      wrong.push(`${key}: no row whose default column is a code span (got ${cell ?? 'no row'})`)
      continue
    }
    try {
      assert.deepEqual(docValue(span[1], value), value)
    } catch {
      wrong.push(`${key}: docs say ${span[1]}, the code applies ${JSON.stringify(value)}`)
    }
  }
  assert.deepEqual(wrong, [])
})

/** Every file git tracks, relative to the repository root. */
function trackedFiles (): string[] {
  return execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter((f) => f !== '')
}

test('the repository stands on its own: no file points at documents outside it', (t) => {
  let files: string[]
  try {
    files = trackedFiles()
  } catch {
    t.skip('not a git checkout')
    return
  }
  const outside = /\.\.\/shared\/|\bARCHITECTURE\.md\b|\bSTYLE\.md\b|\/work\//
  const found: string[] = []
  for (const f of files) {
    if (f.startsWith('bench/results/') || /\.(png|pem|key|lock)$/.test(f) || f === 'package-lock.json') continue
    const text = readFileSync(path.join(ROOT, f), 'utf8')
    text.split('\n').forEach((line, i) => { if (outside.test(line)) found.push(`${f}:${i + 1}: ${line.trim()}`) })
  }
  assert.deepEqual(found, [])
})

test('relative links in the Markdown documents resolve to files of the repository', (t) => {
  let files: string[]
  try {
    files = trackedFiles().filter((f) => f.endsWith('.md'))
  } catch {
    t.skip('not a git checkout')
    return
  }
  const broken: string[] = []
  for (const f of files) {
    const text = readFileSync(path.join(ROOT, f), 'utf8')
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1].split('#')[0]
      if (target === '' || /^[a-z]+:/i.test(target)) continue
      if (!existsSync(path.resolve(ROOT, path.dirname(f), target))) broken.push(`${f}: ${m[1]}`)
    }
  }
  assert.deepEqual(broken, [])
})
