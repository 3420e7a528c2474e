/**
 * `npm run fuzz -- --seconds N [--seed S]`: the request-parser fuzz (bench/fuzz-engine.ts) for N seconds (default
 * 30). Prints progress every 5 s and a summary; exit status 1 on any violation, with the first reproducers dumped.
 */
import { runFuzz, type FuzzResult } from './fuzz-engine.js'

const args = process.argv.slice(2)
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(args[i + 1])
}
const seconds = arg('seconds', 30)
const seed = arg('seed', Date.now() % 0x7fffffff)
const line = (r: FuzzResult): string => `${r.cases} cases, by first status ${JSON.stringify(r.byStatus)}, ${r.violations.length} violations`
const result = await runFuzz(seconds, seed, Infinity, (r) => console.log(`fuzz: ${line(r)}`))
console.log(`fuzz: seed ${seed}, ${seconds} s: ${line(result)}`)
for (const v of result.violations.slice(0, 5)) {
  console.log(`violation: ${v.rule} (${v.detail})\n  input (hex): ${Buffer.from(v.input, 'latin1').toString('hex')}\n  input: ${JSON.stringify(v.input)}`)
}
process.exit(result.violations.length === 0 ? 0 : 1)
