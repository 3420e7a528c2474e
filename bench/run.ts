/**
 * `npm run bench`: Portico side by side with its peers in one run, all proxying to one origin. Each target runs
 * as a fresh process per scenario, pinned to core 1; the origin and the load generator share core 0. Before a
 * target is measured, one GET and one upload through it must reach the origin intact (verify.ts), or the run
 * stops. Figures per target and scenario: requests/s, p99 latency, CPU seconds per 10,000 requests and peak RSS
 * of the target's processes; then Portico's ratios to each peer. With `--rounds N` every measurement is repeated N
 * times, interleaved, and the table shows medians.
 *
 *   node dist/bench/run.js [--quick] [--rounds N] [--only portico,http-proxy] [--json FILE]
 *   BENCH_DURATION=seconds per measurement (default 10; --quick: 3), BENCH_WARMUP=seconds (default 2; --quick: 1),
 *   BENCH_ROUNDS=N (as --rounds), BENCH_LOADGEN=autocannon to use autocannon even where wrk is installed
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { hasTaskset, installCleanup, pinSelf, stopChild, type Child } from './children.js'
import { GET_PATH, UPLOAD_PATH } from './fixture.js'
import { openIdleConnections } from './idle.js'
import { createLoadGenerator, type LoadGenerator, type LoadSpec } from './load.js'
import { describeMachine, describeRevision } from './machine.js'
import { cpuSeconds, memoryKiB, processTree, resetPeak, stealSeconds } from './proc.js'
import { SCENARIO_LABELS, computeRatios, formatSummary, medianOfRounds, type Measurement, type ScenarioId, type Skipped } from './report.js'
import { ROOT, TARGETS, TARGET_NAMES, type RunningTarget, type Target, type TargetName } from './targets.js'
import { USAGE, UsageError, parseOptions, type Options } from './options.js'
import { verifyTarget } from './verify.js'

/** The core every target under test runs on; the origin, the load generator and this process use the other. */
const MEASURED_CORE = 1
const LOAD_CORE = 0
const GET_CONNECTIONS = 50
const POST_CONNECTIONS = 16
const IDLE_CONNECTIONS = 1000
/** How long the idle connections are held before memory is read; below every target's idle timeout (5 s). */
const IDLE_HOLD_MS = 1000
const SCENARIOS: readonly ScenarioId[] = ['get-1k', 'post-1m', 'idle-1000']
/** Progress lines pad target names to the longest one. */
const NAME_WIDTH = Math.max(...TARGET_NAMES.map((n) => n.length))

function progress (line: string): void {
  process.stderr.write(`${line}\n`)
}

const mib = (kib: number): number => kib / 1024

let peakResetRefused = false

/** Resets the peak RSS of `pids`; says once per run when the kernel refuses (peaks then count from start). */
function resetPeakOrSay (pids: readonly number[]): void {
  if (resetPeak(pids) || peakResetRefused) return
  peakResetRefused = true
  progress('note: /proc/PID/clear_refs refused; peak RSS counts from process start, not from the window')
}

/** Warms the target up, then measures one load scenario over the target's whole process tree. */
async function measureLoad (load: LoadGenerator, target: TargetName, scenario: ScenarioId, running: RunningTarget, spec: LoadSpec, options: Options): Promise<Measurement> {
  const startRss = memoryKiB(processTree(running.child.pid)).rss
  await load.run({ ...spec, seconds: options.warmupSeconds })
  const pids = processTree(running.child.pid)
  resetPeakOrSay(pids)
  const cpuBefore = cpuSeconds(pids)
  const stealBefore = stealSeconds()
  const wallBefore = performance.now()
  const result = await load.run(spec)
  const cpuAfter = cpuSeconds(pids)
  const wallSeconds = (performance.now() - wallBefore) / 1000
  const cpu = cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system
  const steal = stealSeconds() - stealBefore
  const per10k = (seconds: number): number | null => result.requests > 0 ? seconds / result.requests * 10_000 : null
  const memory = memoryKiB(pids)
  return {
    target,
    scenario,
    connections: spec.connections,
    requests: result.requests,
    requestsPerSecond: result.requestsPerSecond,
    p99Ms: result.p99Ms,
    cpuSecondsPer10k: per10k(cpu),
    cpuPercent: cpu / wallSeconds * 100,
    systemCpuSecondsPer10k: per10k(cpuAfter.system - cpuBefore.system),
    startRssMiB: mib(startRss),
    rssMiB: mib(memory.rss),
    peakRssMiB: mib(memory.peak),
    stealSeconds: steal,
    errors: result.errors
  }
}

/** Opens the idle connections, holds them, and reads the target's memory while they are open. */
async function measureIdle (target: TargetName, running: RunningTarget): Promise<Measurement> {
  const pids = processTree(running.child.pid)
  const startRss = memoryKiB(pids).rss
  resetPeakOrSay(pids)
  const stealBefore = stealSeconds()
  const conns = await openIdleConnections(running.port, IDLE_CONNECTIONS)
  try {
    await new Promise((resolve) => setTimeout(resolve, IDLE_HOLD_MS))
    const memory = memoryKiB(pids)
    return {
      target,
      scenario: 'idle-1000',
      connections: IDLE_CONNECTIONS,
      requests: null,
      requestsPerSecond: null,
      p99Ms: null,
      cpuSecondsPer10k: null,
      cpuPercent: null,
      systemCpuSecondsPer10k: null,
      startRssMiB: mib(startRss),
      rssMiB: mib(memory.rss),
      peakRssMiB: mib(memory.peak),
      stealSeconds: stealSeconds() - stealBefore,
      errors: IDLE_CONNECTIONS - conns.ok
    }
  } finally {
    conns.close()
  }
}

/** Starts a fresh instance of `target`, verifies that it proxies, measures `scenario`, and stops it. */
async function measure (target: Target, scenario: ScenarioId, round: number, load: LoadGenerator, dir: string, originPort: number, options: Options): Promise<Measurement> {
  const instanceDir = path.join(dir, `${target.name}-${scenario}-${round}`)
  mkdirSync(instanceDir)
  const running = await target.start({ dir: instanceDir, originPort, core: MEASURED_CORE })
  try {
    await verifyTarget(target.name, running.port)
    const url = `http://127.0.0.1:${running.port}`
    switch (scenario) {
      case 'get-1k':
        return await measureLoad(load, target.name, scenario, running, { url: url + GET_PATH, method: 'GET', connections: GET_CONNECTIONS, seconds: options.seconds }, options)
      case 'post-1m':
        return await measureLoad(load, target.name, scenario, running, { url: url + UPLOAD_PATH, method: 'POST', connections: POST_CONNECTIONS, seconds: options.seconds }, options)
      case 'idle-1000':
        return await measureIdle(target.name, running)
    }
  } finally {
    await stopChild(running.child)
  }
}

async function main (): Promise<void> {
  let options: Options
  try {
    options = parseOptions(process.argv.slice(2), process.env)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`bench: ${err.message}\n${USAGE}\n`)
    process.exit(2)
  }
  installCleanup()
  pinSelf(LOAD_CORE)
  const started = Date.now()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-bench-'))
  const machine = describeMachine()
  const revision = describeRevision(ROOT)
  const load = createLoadGenerator(dir, LOAD_CORE, process.env.BENCH_LOADGEN)
  const targets = TARGETS.filter((t) => options.only === null || options.only.includes(t.name))
  const skipped: Skipped[] = []
  const rounds: (Measurement & { round: number })[] = []
  let origin: Child | undefined
  let ok = false

  progress(`machine: ${machine.cores} cores, ${machine.cpuModel}, node ${machine.node}${machine.nginx === null ? '' : `, ${machine.nginx}`}`)
  progress(`portico: ${revision.commit ?? 'unknown commit'}${revision.uncommittedChanges ? ' with uncommitted changes in src/ or bin/' : ''}`)
  progress(`load: ${load.name}; ${options.seconds} s per measurement after ${options.warmupSeconds} s warm-up; ` +
    `GET -c${GET_CONNECTIONS}, POST -c${POST_CONNECTIONS}, ${IDLE_CONNECTIONS} idle connections`)
  if (!hasTaskset()) progress('note: taskset is missing, so nothing is pinned to a core; figures are noisier')
  try {
    const originDir = path.join(dir, 'origin-shared')
    mkdirSync(originDir)
    const shared = TARGETS.find((t) => t.name === 'origin') as Target
    const running = await shared.start({ dir: originDir, originPort: 0, core: LOAD_CORE })
    origin = running.child
    await verifyTarget('origin', running.port)
    progress(`origin: 127.0.0.1:${running.port} (pid ${origin.pid})`)

    const available = targets.filter((target) => {
      const reason = target.unavailable()
      if (reason !== null) {
        skipped.push({ target: target.name, reason })
        progress(`skip ${target.name}: ${reason}`)
      }
      return reason === null
    })
    // Rounds interleave targets, so a slow spell of the machine hits every target's median alike.
    for (let round = 1; round <= options.rounds; round++) {
      if (options.rounds > 1) progress(`round ${round} of ${options.rounds}`)
      for (const target of available) {
        for (const scenario of SCENARIOS) {
          const m = await measure(target, scenario, round, load, dir, running.port, options)
          rounds.push({ round, ...m })
          progress(`${target.name.padEnd(NAME_WIDTH)} ${SCENARIO_LABELS[scenario].padEnd(16)} ` +
            (m.requestsPerSecond === null ? '' : `${m.requestsPerSecond.toFixed(0)} req/s, `) + `peak RSS ${m.peakRssMiB.toFixed(1)} MiB, ${m.errors} errors`)
        }
      }
    }

    const measurements = medianOfRounds(rounds)
    const ratios = computeRatios(measurements)
    if (options.rounds > 1) process.stdout.write(`\nmedians of ${options.rounds} rounds (errors: sum; steal: largest)\n`)
    process.stdout.write(formatSummary(measurements, ratios, skipped))

    if (options.json !== null) {
      writeFileSync(options.json, `${JSON.stringify({
        date: new Date().toISOString(),
        argv: process.argv.slice(2),
        machine,
        revision,
        loadGenerator: load.name,
        pinned: hasTaskset(),
        durationSeconds: options.seconds,
        warmupSeconds: options.warmupSeconds,
        connections: { get: GET_CONNECTIONS, post: POST_CONNECTIONS, idle: IDLE_CONNECTIONS },
        rounds: options.rounds,
        measurements,
        ratios,
        ...(options.rounds > 1 ? { eachRound: rounds } : {}),
        skipped
      }, null, 2)}\n`)
      progress(`wrote ${options.json}`)
    }
    progress(`done in ${Math.round((Date.now() - started) / 1000)} s`)
    ok = true
  } finally {
    if (origin !== undefined) await stopChild(origin)
    // Keep the logs and configs of a failed run for inspection.
    if (ok) rmSync(dir, { recursive: true, force: true })
    else progress(`bench: configs and logs kept in ${dir}`)
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
