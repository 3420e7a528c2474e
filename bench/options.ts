/**
 * The benchmark's options: argv flags (`--quick`, `--rounds N`, `--only a,b`, `--scenarios a,b`, `--json FILE`)
 * and BENCH_* environment variables. Parsing only; what they mean for a run is run.ts's.
 */
import type { ScenarioId } from './report.js'
import { TARGET_NAMES, type TargetName } from './targets.js'

/** Names accepted by `--scenarios`, in the order a run measures them. */
export const SCENARIO_NAMES: Record<string, ScenarioId> = {
  get: 'get-1k',
  get100k: 'get-100k',
  post: 'post-1m',
  busy: 'busy-1000',
  idle: 'idle-1000',
  idle10k: 'idle-10000',
  up1g: 'upload-1g',
  down1g: 'download-1g',
  https: 'https-get-1k',
  h2: 'h2-get-1k',
  'cache-hit': 'cache-hit',
  'cache-mix': 'cache-mix'
}

/** What a run was asked to do. */
export interface Options {
  seconds: number
  warmupSeconds: number
  only: TargetName[] | null
  /** The scenarios to measure, in run order; every one by default. */
  scenarios: ScenarioId[]
  json: string | null
  /** How many times every target and scenario is measured (interleaved); the table shows medians. */
  rounds: number
}

/** The help text. */
export const USAGE = `usage: node dist/bench/run.js [--quick] [--rounds N] [--only ${TARGET_NAMES.join(',')}]
       [--scenarios ${Object.keys(SCENARIO_NAMES).join(',')}] [--json FILE]
env: BENCH_DURATION=seconds per measurement (default 10, --quick 3), BENCH_WARMUP=seconds (default 2, --quick 1),
     BENCH_ROUNDS=N (as --rounds; default 1), BENCH_LOADGEN=autocannon (default: wrk when /usr/bin/wrk exists)
Without --scenarios every scenario runs, the slow ones of issue #14 included: get100k, busy (wrk -c1000) and
idle10k (10,000 connections) like the others, up1g/down1g one 1 GiB transfer per target (seconds each); about
13 minutes in all, 6 with --quick. idle10k needs a file-descriptor limit above 10,500: the run raises its soft
limit to the hard one, and leaves idle10k out, saying so, when that is too low (then: ulimit -n 65536).`

/** A bad option: the run prints it with the usage and exits 2. */
export class UsageError extends Error {}

function positiveInteger (name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a whole number >= 1, got "${value}"`)
  return n
}

/** Reads argv (without node and script) and the BENCH_* environment variables. Throws `UsageError`. */
export function parseOptions (argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  let quick = false
  let only: TargetName[] | null = null
  let scenarios: ScenarioId[] = Object.values(SCENARIO_NAMES)
  let json: string | null = null
  let rounds: string | undefined = env.BENCH_ROUNDS
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? argv[i].split(/=(.*)/s, 2) : [argv[i], undefined]
    const value = (): string => {
      const v = inline ?? argv[++i]
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`)
      return v
    }
    if (flag === '--quick') quick = true
    else if (flag === '--json') json = value()
    else if (flag === '--rounds') rounds = value()
    else if (flag === '--only') {
      only = value().split(',').map((s) => s.trim()).filter((s) => s !== '') as TargetName[]
      const unknown = only.filter((t) => !(TARGET_NAMES as readonly string[]).includes(t))
      if (unknown.length > 0) throw new UsageError(`unknown target ${unknown.join(', ')}`)
    } else if (flag === '--scenarios') {
      const names = value().split(',').map((s) => s.trim()).filter((s) => s !== '')
      const unknown = names.filter((n) => !Object.hasOwn(SCENARIO_NAMES, n))
      if (unknown.length > 0 || names.length === 0) throw new UsageError(`unknown scenario ${unknown.join(', ')} (names: ${Object.keys(SCENARIO_NAMES).join(', ')})`)
      scenarios = Object.entries(SCENARIO_NAMES).filter(([n]) => names.includes(n)).map(([, id]) => id)
    } else if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${USAGE}\n`)
      process.exit(0)
    } else throw new UsageError(`unknown option ${argv[i]}`)
  }
  return {
    seconds: positiveInteger('BENCH_DURATION', env.BENCH_DURATION, quick ? 3 : 10),
    warmupSeconds: positiveInteger('BENCH_WARMUP', env.BENCH_WARMUP, quick ? 1 : 2),
    only,
    scenarios,
    json,
    rounds: positiveInteger('--rounds', rounds, 1)
  }
}
