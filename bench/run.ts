/**
 * `npm run bench`: Portico side by side with its peers in one run, all proxying to one origin. Each target runs
 * as a fresh process per scenario, pinned to core 1; the origin and the load generator share core 0. Before a
 * target is measured, one GET and one upload through it must reach the origin intact (verify.ts), or the run
 * stops. Figures per target and scenario: requests/s, p99 and mean latency, CPU seconds per 10,000 requests and
 * peak RSS of the target's processes; then Portico's ratios to each peer. With `--rounds N` every measurement is
 * repeated N times, interleaved, and the table shows medians. The HTTPS and HTTP/2 scenarios start the targets
 * that have a TLS listener here with a certificate generated for the run (tls.ts); HTTP/2 load is h2load, and
 * without it that scenario is left out with a note.
 *
 *   node dist/bench/run.js [--quick] [--rounds N] [--only portico,http-proxy] [--scenarios get,post,idle,https,h2] [--json FILE]
 *   BENCH_DURATION=seconds per measurement (default 10; --quick: 3), BENCH_WARMUP=seconds (default 2; --quick: 1),
 *   BENCH_ROUNDS=N (as --rounds), BENCH_LOADGEN=autocannon to use autocannon even where wrk is installed
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { hasTaskset, installCleanup, pinSelf, stopChild, type Child } from './children.js'
import { GET_PATH, UPLOAD_PATH } from './fixture.js'
import { hasH2load, runH2load } from './h2load.js'
import { openIdleConnections } from './idle.js'
import { createLoadGenerator, type LoadGenerator, type LoadResult } from './load.js'
import { describeMachine, describeRevision } from './machine.js'
import { cpuSeconds, memoryKiB, processTree, resetPeak, stealSeconds } from './proc.js'
import { SCENARIO_LABELS, computeRatios, formatSummary, medianOfRounds, type Measurement, type NotMeasured, type ScenarioId, type Skipped } from './report.js'
import { ROOT, TARGETS, TARGET_NAMES, type RunningTarget, type Target, type TargetName } from './targets.js'
import { createBenchCert, type BenchCert } from './tls.js'
import { USAGE, UsageError, parseOptions, type Options } from './options.js'
import { verifyTarget, type Transport } from './verify.js'

/** The core every target under test runs on; the origin, the load generator and this process use the other. */
const MEASURED_CORE = 1
const LOAD_CORE = 0
const GET_CONNECTIONS = 50
const POST_CONNECTIONS = 16
/** HTTPS GET runs like the cleartext one, so the two compare: wrk, HTTP/1.1 keep-alive, as many connections. */
const HTTPS_CONNECTIONS = GET_CONNECTIONS
/** HTTP/2: h2load with 10 connections of up to 10 concurrent streams each. */
const H2_CONNECTIONS = 10
const H2_STREAMS = 10
const IDLE_CONNECTIONS = 1000
/** How long the idle connections are held before memory is read; below every target's idle timeout (5 s). */
const IDLE_HOLD_MS = 1000
/** The scenarios served over TLS, and how the verifier talks to a target in each. */
const TRANSPORTS: Record<ScenarioId, Transport> = { 'get-1k': 'http', 'post-1m': 'http', 'idle-1000': 'http', 'https-get-1k': 'https', 'h2-get-1k': 'h2' }
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

/**
 * Warms the target up, then measures one load scenario over the target's whole process tree. `run(seconds)`
 * applies the scenario's load for that long on `connections` connections.
 */
async function measureLoad (target: TargetName, scenario: ScenarioId, running: RunningTarget, connections: number,
  run: (seconds: number) => Promise<LoadResult>, options: Options): Promise<Measurement> {
  const startRss = memoryKiB(processTree(running.child.pid)).rss
  await run(options.warmupSeconds)
  const pids = processTree(running.child.pid)
  resetPeakOrSay(pids)
  const cpuBefore = cpuSeconds(pids)
  const stealBefore = stealSeconds()
  const wallBefore = performance.now()
  const result = await run(options.seconds)
  const cpuAfter = cpuSeconds(pids)
  const wallSeconds = (performance.now() - wallBefore) / 1000
  const cpu = cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system
  const steal = stealSeconds() - stealBefore
  const per10k = (seconds: number): number | null => result.requests > 0 ? seconds / result.requests * 10_000 : null
  const memory = memoryKiB(pids)
  return {
    target,
    scenario,
    connections,
    requests: result.requests,
    requestsPerSecond: result.requestsPerSecond,
    p99Ms: result.p99Ms,
    meanMs: result.meanMs,
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
      meanMs: null,
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

/** The run's certificate: the files the targets read and the PEM the verifier trusts. */
interface RunCert {
  files: BenchCert
  pem: string
}

/**
 * Starts a fresh instance of `target` (with a TLS listener for the HTTPS and HTTP/2 scenarios), verifies that it
 * proxies over the scenario's transport, measures `scenario`, and stops it. `onTls` gets what TLS negotiated.
 */
async function measure (target: Target, scenario: ScenarioId, round: number, load: LoadGenerator, dir: string, originPort: number,
  cert: RunCert | null, options: Options, onTls: (negotiated: string) => void): Promise<Measurement> {
  const instanceDir = path.join(dir, `${target.name}-${scenario}-${round}`)
  mkdirSync(instanceDir)
  const transport = TRANSPORTS[scenario]
  if (transport !== 'http' && cert === null) throw new Error(`${scenario} needs the run's certificate`)
  const tls = transport === 'http' ? undefined : (cert as RunCert)
  const running = await target.start({ dir: instanceDir, originPort, core: MEASURED_CORE, tls: tls?.files })
  try {
    const negotiated = await verifyTarget(target.name, running.port, transport, tls?.pem)
    if (negotiated !== null) onTls(negotiated)
    const url = `${transport === 'http' ? 'http' : 'https'}://127.0.0.1:${running.port}`
    switch (scenario) {
      case 'get-1k':
        return await measureLoad(target.name, scenario, running, GET_CONNECTIONS,
          (seconds) => load.run({ url: url + GET_PATH, method: 'GET', connections: GET_CONNECTIONS, seconds }), options)
      case 'post-1m':
        return await measureLoad(target.name, scenario, running, POST_CONNECTIONS,
          (seconds) => load.run({ url: url + UPLOAD_PATH, method: 'POST', connections: POST_CONNECTIONS, seconds }), options)
      case 'idle-1000':
        return await measureIdle(target.name, running)
      case 'https-get-1k':
        return await measureLoad(target.name, scenario, running, HTTPS_CONNECTIONS,
          (seconds) => load.run({ url: url + GET_PATH, method: 'GET', connections: HTTPS_CONNECTIONS, seconds }), options)
      case 'h2-get-1k':
        return await measureLoad(target.name, scenario, running, H2_CONNECTIONS,
          (seconds) => runH2load({ url: url + GET_PATH, connections: H2_CONNECTIONS, streams: H2_STREAMS, seconds }, LOAD_CORE), options)
    }
  } finally {
    await stopChild(running.child)
  }
}

/** Why `target` is not measured in `scenario` (it has no listener for it here), or null. */
function transportGap (target: Target, scenario: ScenarioId): string | null {
  switch (TRANSPORTS[scenario]) {
    case 'http': return null
    case 'https': return target.tls === null ? 'the bench gives it no TLS listener' : null
    case 'h2':
      if (target.tls === 'h2') return null
      return target.tls === 'http1' ? 'it serves no HTTP/2 to clients' : 'the bench gives it no TLS listener'
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
  const notMeasured: NotMeasured[] = []
  let scenarios = options.scenarios
  if (scenarios.includes('h2-get-1k') && !hasH2load()) {
    scenarios = scenarios.filter((s) => s !== 'h2-get-1k')
    notMeasured.push({ scenario: 'h2-get-1k', targets: [], reason: 'h2load is not installed (apt-get install nghttp2-client)' })
  }
  const rounds: (Measurement & { round: number })[] = []
  let origin: Child | undefined
  let ok = false

  progress(`machine: ${machine.cores} cores, ${machine.cpuModel}, node ${machine.node}${machine.nginx === null ? '' : `, ${machine.nginx}`}`)
  progress(`portico: ${revision.commit ?? 'unknown commit'}${revision.uncommittedChanges ? ' with uncommitted changes in src/ or bin/' : ''}`)
  const loads: Record<ScenarioId, string> = {
    'get-1k': `GET -c${GET_CONNECTIONS}`,
    'post-1m': `POST -c${POST_CONNECTIONS}`,
    'idle-1000': `${IDLE_CONNECTIONS} idle connections`,
    'https-get-1k': `HTTPS GET -c${HTTPS_CONNECTIONS}`,
    'h2-get-1k': `HTTP/2 GET h2load -c${H2_CONNECTIONS} -m${H2_STREAMS}`
  }
  progress(`load: ${load.name}; ${options.seconds} s per measurement after ${options.warmupSeconds} s warm-up; ` +
    scenarios.map((s) => loads[s]).join(', '))
  for (const n of notMeasured) progress(`note: ${SCENARIO_LABELS[n.scenario]} left out: ${n.reason}`)
  if (!hasTaskset()) progress('note: taskset is missing, so nothing is pinned to a core; figures are noisier')
  try {
    const originDir = path.join(dir, 'origin-shared')
    mkdirSync(originDir)
    const shared = TARGETS.find((t) => t.name === 'origin') as Target
    const running = await shared.start({ dir: originDir, originPort: 0, core: LOAD_CORE })
    origin = running.child
    await verifyTarget('origin', running.port)
    progress(`origin: 127.0.0.1:${running.port} (pid ${origin.pid})`)
    let cert: RunCert | null = null
    if (scenarios.some((s) => TRANSPORTS[s] !== 'http')) {
      const files = await createBenchCert(dir)
      cert = { files, pem: readFileSync(files.certFile, 'utf8') }
    }

    const available = targets.filter((target) => {
      const reason = target.unavailable()
      if (reason !== null) {
        skipped.push({ target: target.name, reason })
        progress(`skip ${target.name}: ${reason}`)
      }
      return reason === null
    })
    for (const scenario of scenarios) {
      const gaps = new Map<string, TargetName[]>()
      for (const target of available) {
        const gap = transportGap(target, scenario)
        if (gap !== null) gaps.set(gap, [...(gaps.get(gap) ?? []), target.name])
      }
      for (const [reason, names] of gaps) notMeasured.push({ scenario, targets: names, reason })
    }
    // Rounds interleave targets, so a slow spell of the machine hits every target's median alike.
    for (let round = 1; round <= options.rounds; round++) {
      if (options.rounds > 1) progress(`round ${round} of ${options.rounds}`)
      for (const target of available) {
        for (const scenario of scenarios) {
          if (transportGap(target, scenario) !== null) continue
          const m = await measure(target, scenario, round, load, dir, running.port, cert, options, (negotiated) => {
            if (round === 1) progress(`${target.name.padEnd(NAME_WIDTH)} ${SCENARIO_LABELS[scenario].padEnd(16)} ${negotiated}`)
          })
          rounds.push({ round, ...m })
          progress(`${target.name.padEnd(NAME_WIDTH)} ${SCENARIO_LABELS[scenario].padEnd(16)} ` +
            (m.requestsPerSecond === null ? '' : `${m.requestsPerSecond.toFixed(0)} req/s, `) + `peak RSS ${m.peakRssMiB.toFixed(1)} MiB, ${m.errors} errors`)
        }
      }
    }

    const measurements = medianOfRounds(rounds)
    const ratios = computeRatios(measurements)
    if (options.rounds > 1) process.stdout.write(`\nmedians of ${options.rounds} rounds (errors: sum; steal: largest)\n`)
    process.stdout.write(formatSummary(measurements, ratios, skipped, notMeasured))

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
        scenarios,
        connections: { get: GET_CONNECTIONS, post: POST_CONNECTIONS, idle: IDLE_CONNECTIONS, https: HTTPS_CONNECTIONS, h2: H2_CONNECTIONS, h2Streams: H2_STREAMS },
        rounds: options.rounds,
        measurements,
        ratios,
        ...(options.rounds > 1 ? { eachRound: rounds } : {}),
        skipped,
        notMeasured
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
