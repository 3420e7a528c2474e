/**
 * `npm run bench`: Portico side by side with its peers in one run, all proxying to one origin. Each target runs
 * as a fresh process per scenario, pinned to core 1; the origin and the load generator share core 0. Before a
 * target is measured, one GET and one upload through it must reach the origin intact (verify.ts), or the run
 * stops. Figures per target and scenario: requests/s, p99 and mean latency, CPU seconds per 10,000 requests and
 * peak RSS of the target's processes; then Portico's ratios to each peer, and every target's RSS right after
 * start ("idle after start"). With `--rounds N` every measurement is repeated N times, interleaved, and the table
 * shows medians. The HTTPS and HTTP/2 scenarios start the targets that have a TLS listener here with a
 * certificate generated for the run (tls.ts); HTTP/2 load is h2load, and without it that scenario is left out
 * with a note. The cache scenarios have their own contenders (the origin
 * served directly, Portico and nginx forwarding, Portico's memory cache and nginx's proxy_cache): `cache-hit`
 * GETs one 1 KiB object the origin lets caches keep for an hour, after checking that the caching targets store it
 * and then answer it as a hit; `cache-mix` GETs four never-repeated such objects for every request of one hot
 * object, so most requests are misses that get stored. Around each window of Portico's cache the bench reads its
 * admin statistics, and counts what looks wrong (misses in the hit window, a store beyond `maxSize`, errors) as
 * an anomaly: printed at the end, and the run exits 1.
 *
 * The scenarios of issue #14, measured like GET 1 KiB for every non-caching target: `get-100k` (wrk -c50 on a
 * 100 KiB answer, checked byte for byte through each target first), `busy-1000` (GET 1 KiB on 1,000 keep-alive
 * connections: peak RSS and CPU per 10k), `idle-10000` (idle-1000's measurement with 10,000 connections),
 * `upload-1g` and `download-1g` (one 1 GiB body streamed through the target by this process, no warm-up: the
 * target's CPU seconds, throughput, and peak RSS over its RSS after start; a transfer that does not deliver
 * exactly 1 GiB is an anomaly). They make the default run (every scenario) take about 13 minutes, 6 with
 * `--quick`. 10,000 idle connections need more than 10,500 open files in this process and in the target: the run
 * raises its soft limit to the hard one (children inherit it), sizes nginx's and HAProxy's limits to the
 * scenario, and leaves the scenario out, saying so, when the hard limit is too low (then: `ulimit -n 65536`).
 * A target that cannot be started or measured in busy-1000, idle-10000 or the transfers is reported as not
 * measured (and as an anomaly) and the run goes on.
 *
 *   node dist/bench/run.js [--quick] [--rounds N] [--only portico,http-proxy]
 *     [--scenarios get,get100k,post,busy,idle,idle10k,up1g,down1g,https,h2,cache-hit,cache-mix] [--json FILE]
 *   BENCH_DURATION=seconds per measurement (default 10; --quick: 3), BENCH_WARMUP=seconds (default 2; --quick: 1),
 *   BENCH_ROUNDS=N (as --rounds), BENCH_LOADGEN=autocannon to use autocannon even where wrk is installed
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { hasTaskset, installCleanup, pinSelf, raiseFileLimit, stopChild, type Child } from './children.js'
import { CACHE_PATH, DOWNLOAD_PATH, GET_PATH, HOT_PATH, LARGE_GET_PATH, OBJECT_PREFIX, TRANSFER_BYTES, UPLOAD_PATH } from './fixture.js'
import { hasH2load, runH2load } from './h2load.js'
import { openIdleConnections } from './idle.js'
import { createLoadGenerator, type LoadGenerator, type LoadResult, type PathMix } from './load.js'
import { describeMachine, describeRevision } from './machine.js'
import { cpuSeconds, memoryKiB, processTree, resetPeak, stealSeconds } from './proc.js'
import {
  CACHE_SCENARIOS, SCENARIO_LABELS, SETTLE_SECONDS, computeCacheRatios, computeRatios, formatSummary, medianOfRounds,
  type CacheWindow, type Measurement, type NotMeasured, type ScenarioId, type Skipped
} from './report.js'
import { downloadThrough, uploadThrough } from './transfer.js'
import { CACHE_CONTENDERS, CACHE_MAX_MIB, CACHING_TARGETS, ROOT, RULES_TARGETS, TARGETS, TARGET_NAMES, type RunningTarget, type Target, type TargetName } from './targets.js'
import { createBenchCert, type BenchCert } from './tls.js'
import { USAGE, UsageError, parseOptions, type Options } from './options.js'
import { verifyCaching, verifyHit, verifyLargeGet, verifyTarget, type CacheKind, type Transport, verifyCompression } from './verify.js'
import type { CacheStats as Counters } from '../src/cache/types.js'

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
/** The cache scenarios: wrk GET -c50, like GET 1 KiB. */
const CACHE_HIT_CONNECTIONS = GET_CONNECTIONS
const CACHE_MIX_CONNECTIONS = GET_CONNECTIONS
/** In the mix, every 5th request is the hot object and the other four are never-repeated objects: 80% misses. */
const MIX_HOT_EVERY = 5
/** GET 100 KiB: wrk -c50, like GET 1 KiB. */
const LARGE_GET_CONNECTIONS = GET_CONNECTIONS
/** Busy connections: GET 1 KiB by wrk on 1,000 keep-alive connections at once (one wrk thread drives them all). */
const BUSY_CONNECTIONS = 1000
/** The idle-connections scenarios and how many connections each holds. */
const IDLE_COUNTS = { 'idle-1000': 1000, 'idle-10000': 10_000 } as const
type IdleScenario = keyof typeof IDLE_COUNTS
/**
 * How long the idle connections are held before memory is read. The first connection has then been idle for the
 * time it took to open the others plus this, which must stay below every target's idle keep-alive timeout: 5 s
 * for Portico (`server.keepAliveTimeout`), node-http-proxy and Portico in Express (Node's default); 72 s
 * Fastify's, 75 s nginx's, 60 s HAProxy's here. A connection a target closes while held counts as an error.
 */
const IDLE_HOLD_MS = 1000
/** Past this much idle time of the oldest connection, a progress note says the 5 s timeouts may have struck. */
const IDLE_SAFE_MS = 4000
/**
 * The most client connections each scenario holds at once, where that is more than a handful: nginx and HAProxy
 * are configured for it (peers/native.ts), and the run checks its file-descriptor limit against `FILES_NEEDED`.
 */
const SCENARIO_CONNECTIONS: Partial<Record<ScenarioId, number>> = {
  'busy-1000': BUSY_CONNECTIONS,
  'idle-1000': IDLE_COUNTS['idle-1000'],
  'idle-10000': IDLE_COUNTS['idle-10000']
}
/**
 * File descriptors one process needs in a scenario: the bench process holds the idle connections, wrk the busy
 * ones, and the target as many again (busy: one upstream connection per client at worst), with room to spare.
 */
const FILES_NEEDED: Partial<Record<ScenarioId, number>> = {
  'busy-1000': 2 * BUSY_CONNECTIONS + 512,
  'idle-1000': IDLE_COUNTS['idle-1000'] + 512,
  'idle-10000': IDLE_COUNTS['idle-10000'] + 512
}
/**
 * The slow scenarios of issue #14: a target that cannot be started or measured in one of them (a native peer
 * refusing the connection count, say) is reported as not measured, and as an anomaly, and the run goes on.
 */
const LENIENT_SCENARIOS: readonly ScenarioId[] = ['busy-1000', 'idle-10000', 'upload-1g', 'download-1g']
/** The scenarios served over TLS, and how the verifier talks to a target in each. */
const TRANSPORTS: Record<ScenarioId, Transport> = {
  'get-1k': 'http',
  'get-100k': 'http',
  'post-1m': 'http',
  'busy-1000': 'http',
  'idle-1000': 'http',
  'idle-10000': 'http',
  'upload-1g': 'http',
  'download-1g': 'http',
  'https-get-1k': 'https',
  'h2-get-1k': 'h2',
  'cache-hit': 'http',
  'cache-mix': 'http'
}
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

/** Portico's cache statistics as its admin listener reports them (`GET /cache/stats`). */
type CacheStats = Counters & { bytes: number | null }

/** Reads Portico's cache statistics from its admin listener on `port`. */
function readCacheStats (port: number): Promise<CacheStats> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/cache/stats', agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode !== 200) {
          reject(new Error(`GET /cache/stats on the admin listener answered ${res.statusCode}: ${text}`))
          return
        }
        resolve(JSON.parse(text) as CacheStats)
      })
    })
    req.on('timeout', () => req.destroy(new Error('GET /cache/stats: no answer within 10 s')))
    req.on('error', reject)
  })
}

function cacheWindow (requests: number, before: CacheStats, after: CacheStats): CacheWindow {
  const d = (f: 'hits' | 'misses' | 'stored' | 'collapsed' | 'bypassed' | 'storeErrors'): number => after[f] - before[f]
  return {
    requests,
    hits: d('hits'),
    misses: d('misses'),
    stored: d('stored'),
    collapsed: d('collapsed'),
    bypassed: d('bypassed'),
    storeErrors: d('storeErrors'),
    bytes: after.bytes,
    maxBytes: CACHE_MAX_MIB * 1024 * 1024
  }
}

/**
 * Warms the target up, then measures one load scenario over the target's whole process tree. `run(seconds)`
 * applies the scenario's load for that long on `connections` connections. With an admin port, Portico's cache
 * statistics are read just outside the CPU window, before and after it.
 */
async function measureLoad (target: TargetName, scenario: ScenarioId, running: RunningTarget, connections: number,
  run: (seconds: number) => Promise<LoadResult>, options: Options): Promise<Measurement> {
  const startRss = memoryKiB(processTree(running.child.pid)).rss
  await run(options.warmupSeconds)
  const pids = processTree(running.child.pid)
  const statsBefore = running.adminPort === undefined ? null : await readCacheStats(running.adminPort)
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
  const cache = statsBefore === null ? undefined : cacheWindow(result.requests, statsBefore, await readCacheStats(running.adminPort as number))
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
    errors: result.errors,
    ...(cache === undefined ? {} : { cache })
  }
}

/**
 * Opens the scenario's idle connections (1,000 or 10,000), holds them, and reads the target's memory while they
 * are open.
 */
async function measureIdle (target: TargetName, scenario: IdleScenario, running: RunningTarget): Promise<Measurement> {
  const count = IDLE_COUNTS[scenario]
  const pids = processTree(running.child.pid)
  const startRss = memoryKiB(pids).rss
  let settledRss: number | undefined
  if (scenario === 'idle-1000') {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_SECONDS * 1000))
    settledRss = memoryKiB(pids).rss
  }
  resetPeakOrSay(pids)
  const stealBefore = stealSeconds()
  const opening = performance.now()
  const conns = await openIdleConnections(running.port, count)
  const openMs = performance.now() - opening
  if (openMs + IDLE_HOLD_MS > IDLE_SAFE_MS) {
    progress(`note: ${target} ${SCENARIO_LABELS[scenario]}: opening took ${(openMs / 1000).toFixed(1)} s, so the first connections ` +
      `were idle ${((openMs + IDLE_HOLD_MS) / 1000).toFixed(1)} s when memory was read; a 5 s keep-alive timeout may have closed some (counted as errors)`)
  }
  try {
    await new Promise((resolve) => setTimeout(resolve, IDLE_HOLD_MS))
    const memory = memoryKiB(pids)
    return {
      target,
      scenario,
      connections: count,
      requests: null,
      requestsPerSecond: null,
      p99Ms: null,
      meanMs: null,
      cpuSecondsPer10k: null,
      cpuPercent: null,
      systemCpuSecondsPer10k: null,
      startRssMiB: mib(startRss),
      ...(settledRss === undefined ? {} : { settledRssMiB: mib(settledRss) }),
      rssMiB: mib(memory.rss),
      peakRssMiB: mib(memory.peak),
      stealSeconds: stealSeconds() - stealBefore,
      errors: count - conns.ok
    }
  } finally {
    conns.close()
  }
}

/**
 * One 1 GiB transfer through the target on one connection from this process: an upload to the origin or a
 * download from it, without warm-up. Reads the target's CPU time around it and its peak RSS during it (reset
 * first); growth is that peak minus the RSS after start. A transfer that does not deliver exactly 1 GiB counts
 * one error and an anomaly.
 */
async function measureTransfer (target: TargetName, scenario: 'upload-1g' | 'download-1g', running: RunningTarget): Promise<Measurement> {
  const pids = processTree(running.child.pid)
  const startRss = memoryKiB(pids).rss
  resetPeakOrSay(pids)
  const cpuBefore = cpuSeconds(pids)
  const stealBefore = stealSeconds()
  const result = await (scenario === 'upload-1g' ? uploadThrough(running.port) : downloadThrough(running.port))
  const cpuAfter = cpuSeconds(pids)
  const memory = memoryKiB(pids)
  const cpu = cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system
  const complete = result.problem === null && result.bytes === TRANSFER_BYTES
  if (!complete) {
    anomaly(`${target} ${SCENARIO_LABELS[scenario]}: ${result.bytes} of ${TRANSFER_BYTES} bytes arrived` +
      (result.problem === null ? '' : ` (${result.problem})`))
  }
  return {
    target,
    scenario,
    connections: 1,
    requests: complete ? 1 : 0,
    requestsPerSecond: null,
    p99Ms: null,
    meanMs: null,
    cpuSecondsPer10k: null,
    cpuPercent: result.seconds > 0 ? cpu / result.seconds * 100 : null,
    systemCpuSecondsPer10k: null,
    startRssMiB: mib(startRss),
    rssMiB: mib(memory.rss),
    peakRssMiB: mib(memory.peak),
    stealSeconds: stealSeconds() - stealBefore,
    errors: complete ? 0 : 1,
    transfer: {
      bytes: result.bytes,
      seconds: result.seconds,
      mibPerSecond: result.seconds > 0 ? mib(mib(result.bytes)) / result.seconds : 0,
      cpuSeconds: cpu,
      systemCpuSeconds: cpuAfter.system - cpuBefore.system,
      growthMiB: mib(memory.peak - startRss)
    }
  }
}

/** The run's certificate: the files the targets read and the PEM the verifier trusts. */
interface RunCert {
  files: BenchCert
  pem: string
}

/** The cache a target has, for the cache checks. */
function cacheKind (name: TargetName): CacheKind {
  return name === 'portico-cache' ? 'portico' : name === 'nginx-cache' ? 'nginx' : null
}

/** Paths of the mix: a prefix no earlier load of this run used, so its objects are misses. */
const runTag = randomBytes(4).toString('hex')
let mixLoads = 0
function nextMix (): PathMix {
  mixLoads++
  return { uniquePrefix: `${OBJECT_PREFIX}${runTag}-${mixLoads}-`, hotPath: HOT_PATH, hotEvery: MIX_HOT_EVERY }
}

/** What looked wrong in a measured window; printed at the end of the run, which then exits 1. */
const anomalies: string[] = []

/** Adds `line` to the anomalies and says it now. */
function anomaly (line: string): void {
  anomalies.push(line)
  progress(`ANOMALY ${line}`)
}

/**
 * The cache scenarios' checks after a window: the object must still be a hit, and Portico's cache statistics must
 * fit the load (no misses in the hit window, every miss of the mix stored, the store within `maxSize`); errors
 * from the load generator count too. What fails is added to `anomalies`.
 */
async function checkCacheWindow (target: TargetName, scenario: ScenarioId, running: RunningTarget, m: Measurement): Promise<void> {
  const say = (what: string): void => anomaly(`${target} ${SCENARIO_LABELS[scenario]}: ${what}`)
  if (m.errors > 0) say(`${m.errors} errors (socket errors, timeouts or non-2xx answers) reported by the load generator`)
  const kind = cacheKind(target)
  if (kind === null) return
  try {
    await verifyHit(target, running.port, scenario === 'cache-hit' ? CACHE_PATH : HOT_PATH, kind)
  } catch (err) {
    say(err instanceof Error ? err.message : String(err))
  }
  const c = m.cache
  if (c === undefined) return
  if (c.bytes !== null && c.bytes > c.maxBytes) say(`the memory store holds ${c.bytes} bytes, beyond maxSize ${c.maxBytes}`)
  if (c.storeErrors > 0 || c.bypassed > 0) say(`${c.storeErrors} store errors, ${c.bypassed} requests bypassed the cache`)
  if (scenario === 'cache-hit') {
    if (c.misses > 0) say(`${c.misses} misses in the hit window (want 0)`)
    if (m.requests !== null && c.hits < m.requests) say(`${c.hits} hits for ${m.requests} requests completed (want at least as many)`)
  } else if (c.misses - c.stored > m.connections) {
    say(`${c.misses} misses but only ${c.stored} stored (every miss of the mix is a cacheable 200)`)
  }
}

/**
 * Starts a fresh instance of `target` (with a TLS listener for the HTTPS and HTTP/2 scenarios), verifies that it
 * proxies over the scenario's transport (and, in the cache scenarios, that it caches or forwards as it should),
 * measures `scenario`, and stops it. `onVerified` gets what TLS negotiated or what the cache check saw.
 */
async function measure (target: Target, scenario: ScenarioId, round: number, load: LoadGenerator, dir: string, originPort: number,
  cert: RunCert | null, options: Options, onVerified: (seen: string) => void): Promise<Measurement> {
  const instanceDir = path.join(dir, `${target.name}-${scenario}-${round}`)
  mkdirSync(instanceDir)
  const transport = TRANSPORTS[scenario]
  if (transport !== 'http' && cert === null) throw new Error(`${scenario} needs the run's certificate`)
  const tls = transport === 'http' ? undefined : (cert as RunCert)
  const running = await target.start({ dir: instanceDir, originPort, core: MEASURED_CORE, tls: tls?.files, connections: SCENARIO_CONNECTIONS[scenario] })
  try {
    const negotiated = await verifyTarget(target.name, running.port, transport, tls?.pem)
    if (negotiated !== null) onVerified(negotiated)
    if (target.name === 'portico-gzip') await verifyCompression(target.name, running.port)
    const url = `${transport === 'http' ? 'http' : 'https'}://127.0.0.1:${running.port}`
    switch (scenario) {
      case 'get-1k':
        return await measureLoad(target.name, scenario, running, GET_CONNECTIONS,
          // Accept-Encoding as browsers send it: only portico-gzip compresses (the origin never does).
          (seconds) => load.run({ url: url + GET_PATH, method: 'GET', connections: GET_CONNECTIONS, seconds, headers: { 'accept-encoding': 'gzip' } }), options)
      case 'get-100k':
        await verifyLargeGet(target.name, running.port)
        return await measureLoad(target.name, scenario, running, LARGE_GET_CONNECTIONS,
          (seconds) => load.run({ url: url + LARGE_GET_PATH, method: 'GET', connections: LARGE_GET_CONNECTIONS, seconds }), options)
      case 'post-1m':
        return await measureLoad(target.name, scenario, running, POST_CONNECTIONS,
          (seconds) => load.run({ url: url + UPLOAD_PATH, method: 'POST', connections: POST_CONNECTIONS, seconds }), options)
      case 'busy-1000':
        return await measureLoad(target.name, scenario, running, BUSY_CONNECTIONS,
          (seconds) => load.run({ url: url + GET_PATH, method: 'GET', connections: BUSY_CONNECTIONS, seconds }), options)
      case 'idle-1000':
      case 'idle-10000':
        return await measureIdle(target.name, scenario, running)
      case 'upload-1g':
      case 'download-1g':
        return await measureTransfer(target.name, scenario, running)
      case 'https-get-1k':
        return await measureLoad(target.name, scenario, running, HTTPS_CONNECTIONS,
          (seconds) => load.run({ url: url + GET_PATH, method: 'GET', connections: HTTPS_CONNECTIONS, seconds }), options)
      case 'h2-get-1k':
        return await measureLoad(target.name, scenario, running, H2_CONNECTIONS,
          (seconds) => runH2load({ url: url + GET_PATH, connections: H2_CONNECTIONS, streams: H2_STREAMS, seconds }, LOAD_CORE), options)
      case 'cache-hit': {
        onVerified(await verifyCaching(target.name, running.port, CACHE_PATH, cacheKind(target.name)))
        const m = await measureLoad(target.name, scenario, running, CACHE_HIT_CONNECTIONS,
          (seconds) => load.run({ url: url + CACHE_PATH, method: 'GET', connections: CACHE_HIT_CONNECTIONS, seconds }), options)
        await checkCacheWindow(target.name, scenario, running, m)
        return m
      }
      case 'cache-mix': {
        // The hot object, and one object like the unique ones.
        onVerified(await verifyCaching(target.name, running.port, HOT_PATH, cacheKind(target.name)))
        await verifyCaching(target.name, running.port, `${OBJECT_PREFIX}${runTag}-verify-${target.name}-${round}`, cacheKind(target.name))
        const m = await measureLoad(target.name, scenario, running, CACHE_MIX_CONNECTIONS,
          (seconds) => load.run({ url, method: 'GET', connections: CACHE_MIX_CONNECTIONS, seconds, mix: nextMix() }), options)
        await checkCacheWindow(target.name, scenario, running, m)
        return m
      }
    }
  } finally {
    await stopChild(running.child)
  }
}

/**
 * Whether `target` takes part in `scenario`: the cache scenarios have their own contenders, and the caching
 * targets take part in nothing else. Not a gap: targets outside a scenario's scope are left out silently.
 */
function inScope (target: Target, scenario: ScenarioId): boolean {
  if (RULES_TARGETS.includes(target.name)) return scenario === 'get-1k'
  return CACHE_SCENARIOS.includes(scenario) ? CACHE_CONTENDERS.includes(target.name) : !CACHING_TARGETS.includes(target.name)
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
  // Traversable, not listable: nginx's worker (user nobody when the bench runs as root) opens its proxy_cache
  // files in an instance directory below this one.
  chmodSync(dir, 0o711)
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
  const files = raiseFileLimit()
  for (const scenario of scenarios.filter((s) => (FILES_NEEDED[s] ?? 0) > files)) {
    scenarios = scenarios.filter((s) => s !== scenario)
    notMeasured.push({
      scenario,
      targets: [],
      reason: `it needs ${FILES_NEEDED[scenario]} open files per process and the limit here is ${files} (raise the hard limit: ulimit -n 65536)`
    })
  }
  const rounds: (Measurement & { round: number })[] = []
  let origin: Child | undefined
  let ok = false

  progress(`machine: ${machine.cores} cores, ${machine.cpuModel}, node ${machine.node}${machine.nginx === null ? '' : `, ${machine.nginx}`}`)
  progress(`portico: ${revision.commit ?? 'unknown commit'}${revision.uncommittedChanges ? ' with uncommitted changes in src/ or bin/' : ''}`)
  const loads: Record<ScenarioId, string> = {
    'get-1k': `GET -c${GET_CONNECTIONS}`,
    'get-100k': `GET ${LARGE_GET_PATH} -c${LARGE_GET_CONNECTIONS}`,
    'post-1m': `POST -c${POST_CONNECTIONS}`,
    'busy-1000': `GET -c${BUSY_CONNECTIONS}`,
    'idle-1000': `${IDLE_COUNTS['idle-1000']} idle connections`,
    'idle-10000': `${IDLE_COUNTS['idle-10000']} idle connections`,
    'upload-1g': `one 1 GiB POST ${UPLOAD_PATH}`,
    'download-1g': `one 1 GiB GET ${DOWNLOAD_PATH}`,
    'https-get-1k': `HTTPS GET -c${HTTPS_CONNECTIONS}`,
    'h2-get-1k': `HTTP/2 GET h2load -c${H2_CONNECTIONS} -m${H2_STREAMS}`,
    'cache-hit': `cache hit GET ${CACHE_PATH} -c${CACHE_HIT_CONNECTIONS}`,
    'cache-mix': `cache mix GET -c${CACHE_MIX_CONNECTIONS} (${MIX_HOT_EVERY - 1} in ${MIX_HOT_EVERY} never-repeated ${OBJECT_PREFIX}..., 1 in ${MIX_HOT_EVERY} ${HOT_PATH})`
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
        if (!inScope(target, scenario)) continue
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
          if (!inScope(target, scenario) || transportGap(target, scenario) !== null) continue
          let m: Measurement
          try {
            m = await measure(target, scenario, round, load, dir, running.port, cert, options, (negotiated) => {
              if (round === 1) progress(`${target.name.padEnd(NAME_WIDTH)} ${SCENARIO_LABELS[scenario].padEnd(16)} ${negotiated}`)
            })
          } catch (err) {
            if (!LENIENT_SCENARIOS.includes(scenario)) throw err
            const why = err instanceof Error ? err.message : String(err)
            notMeasured.push({ scenario, targets: [target.name], reason: `round ${round}: ${why.split('\n')[0]}` })
            anomaly(`${target.name} ${SCENARIO_LABELS[scenario]}: not measured in round ${round}: ${why}`)
            continue
          }
          rounds.push({ round, ...m })
          progress(`${target.name.padEnd(NAME_WIDTH)} ${SCENARIO_LABELS[scenario].padEnd(16)} ` +
            (m.requestsPerSecond === null ? '' : `${m.requestsPerSecond.toFixed(0)} req/s, `) + `peak RSS ${m.peakRssMiB.toFixed(1)} MiB, ${m.errors} errors`)
        }
      }
    }

    const measurements = medianOfRounds(rounds)
    const ratios = computeRatios(measurements)
    if (options.rounds > 1) process.stdout.write(`\nmedians of ${options.rounds} rounds (errors: sum; steal: largest)\n`)
    process.stdout.write(formatSummary(measurements, ratios, skipped, notMeasured, options.rounds))

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
        connections: {
          get: GET_CONNECTIONS,
          post: POST_CONNECTIONS,
          get100k: LARGE_GET_CONNECTIONS,
          busy: BUSY_CONNECTIONS,
          idle: IDLE_COUNTS['idle-1000'],
          idle10k: IDLE_COUNTS['idle-10000'],
          https: HTTPS_CONNECTIONS,
          h2: H2_CONNECTIONS,
          h2Streams: H2_STREAMS,
          cacheHit: CACHE_HIT_CONNECTIONS,
          cacheMix: CACHE_MIX_CONNECTIONS
        },
        ...(scenarios.some((sc) => sc === 'upload-1g' || sc === 'download-1g') ? { transferBytes: TRANSFER_BYTES } : {}),
        fileLimit: Number.isFinite(files) ? files : null,
        ...(scenarios.some((sc) => CACHE_SCENARIOS.includes(sc)) ? { cache: { maxSizeMiB: CACHE_MAX_MIB, mixHotEvery: MIX_HOT_EVERY } } : {}),
        rounds: options.rounds,
        measurements,
        ratios,
        cacheRatios: computeCacheRatios(measurements),
        anomalies,
        ...(options.rounds > 1 ? { eachRound: rounds } : {}),
        skipped,
        notMeasured
      }, null, 2)}\n`)
      progress(`wrote ${options.json}`)
    }
    if (anomalies.length > 0) {
      process.stdout.write(`\n${anomalies.length} anomal${anomalies.length === 1 ? 'y' : 'ies'} in the measured windows:\n${anomalies.map((a) => `  ${a}`).join('\n')}\n`)
      process.exitCode = 1
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
