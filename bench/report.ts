/**
 * The results of a run and how they are printed: one table row per target and scenario (medians when there were
 * several rounds), then Portico's ratios to each peer (the figures issue #2 is judged by; Portico in Express is
 * one of the rows; the HTTPS and HTTP/2 scenarios in a second table; GET 100 KiB, 1,000 busy and 10,000 idle
 * connections and the start RSS in a third; the 1 GiB transfers in a fourth), each target's RSS after start (the
 * "idle after start" figure of issue #14), what the 1 GiB transfers cost each target (throughput, CPU seconds,
 * RSS growth), and what the access log, embedding in Express and terminating TLS cost; for the cache scenarios, a table of what a cache hit and a miss-heavy mix
 * cost Portico against forwarding and against nginx's proxy_cache, and the cache issue's verdict (a hit costs
 * Portico less CPU than forwarding the same request). Measuring is run.ts's.
 */
import type { TargetName } from './targets.js'

/** Every scenario, in the order a run measures them. */
export const SCENARIOS = ['get-1k', 'get-100k', 'post-1m', 'busy-1000', 'idle-1000', 'idle-10000', 'upload-1g', 'download-1g',
  'https-get-1k', 'h2-get-1k', 'cache-hit', 'cache-mix'] as const
export type ScenarioId = typeof SCENARIOS[number]

/** Printed names of the scenarios. */
export const SCENARIO_LABELS: Record<ScenarioId, string> = {
  'get-1k': 'GET 1 KiB',
  'get-100k': 'GET 100 KiB',
  'post-1m': 'POST 1 MiB',
  'busy-1000': '1000 busy conns',
  'idle-1000': '1000 idle conns',
  'idle-10000': '10000 idle conns',
  'upload-1g': 'upload 1 GiB',
  'download-1g': 'download 1 GiB',
  'https-get-1k': 'HTTPS GET 1 KiB',
  'h2-get-1k': 'HTTP/2 GET 1 KiB',
  'cache-hit': 'cache hit 1 KiB',
  'cache-mix': 'cache mix 1 KiB'
}

/** The scenarios that compare caching with forwarding (CACHE_CONTENDERS in targets.ts). */
export const CACHE_SCENARIOS: readonly ScenarioId[] = ['cache-hit', 'cache-mix']

/** The scenarios that hold connections open without load: memory only. */
export const IDLE_SCENARIOS: readonly ScenarioId[] = ['idle-1000', 'idle-10000']

/** The scenarios of one 1 GiB transfer on one connection; their figures are in `Measurement.transfer`. */
export const TRANSFER_SCENARIOS: readonly ScenarioId[] = ['upload-1g', 'download-1g']

/** One 1 GiB transfer through a target (upload-1g, download-1g). */
export interface Transfer {
  /** Body bytes that arrived (the origin's count for an upload, the client's for a download). */
  bytes: number
  /** Wall time of the transfer, request head to end of answer. */
  seconds: number
  /** `bytes` over `seconds`, in MiB/s. */
  mibPerSecond: number
  /** CPU seconds (user + system) the target used for the transfer. */
  cpuSeconds: number
  /** The part of `cpuSeconds` spent in the kernel. */
  systemCpuSeconds: number
  /** Peak RSS during the transfer minus RSS after start: what the transfer cost the target in memory. */
  growthMiB: number
}

/**
 * Portico's cache statistics (admin `GET /cache/stats`) over one measured window: the counters' growth, and the
 * memory store's bytes at the end of it.
 */
export interface CacheWindow {
  /** Requests the load generator completed in the window, to set the counters against. */
  requests: number
  hits: number
  misses: number
  stored: number
  collapsed: number
  bypassed: number
  storeErrors: number
  /** Bytes (bodies and heads) in the memory store after the window. */
  bytes: number | null
  /** The store's bound, `cache.maxSize`. */
  maxBytes: number
}

/**
 * One target in one scenario. Load figures are null for the idle-connections scenarios; the 1 GiB transfers have
 * no per-request figures either (one request), but CPU %, the RSS figures and `transfer`.
 */
export interface Measurement {
  target: TargetName
  scenario: ScenarioId
  connections: number
  requests: number | null
  requestsPerSecond: number | null
  /** Null also where the load generator gives no percentiles (h2load). */
  p99Ms: number | null
  /** Mean request latency; the only latency figure of the HTTP/2 rows. Absent in runs recorded before it. */
  meanMs: number | null
  /** CPU seconds (user + system) the target used per 10,000 requests in the measured window. */
  cpuSecondsPer10k: number | null
  /**
   * The target's CPU time over the window's wall time, in percent of one core. Near 100 the target was the
   * bottleneck; well below it, the other core (load generator and origin) was, and req/s says little about it.
   */
  cpuPercent: number | null
  /** The part of `cpuSecondsPer10k` spent in the kernel (system time): sockets, copies, loopback TCP. */
  systemCpuSecondsPer10k: number | null
  /** Resident memory of the fresh instance after the verifying requests, before any load. */
  startRssMiB: number
  /**
   * Resident memory after the fresh instance sat idle for `SETTLE_SECONDS` after start (measured in the 1,000 idle
   * connections scenario only, before they open): what an operator sees of an idle proxy, once its runtime has
   * returned what start-up used (V8 shrinks its heap after a few seconds without allocation).
   */
  settledRssMiB?: number
  /** Resident memory at the end of the window. */
  rssMiB: number
  /** Peak resident memory (VmHWM) during the window; since process start when the kernel cannot reset it. */
  peakRssMiB: number
  /** CPU seconds the hypervisor stole from this machine (all cores) during the window; high values mean noise. */
  stealSeconds: number
  /**
   * Load: socket errors, timeouts, non-2xx. Idle: connections that failed or were closed while held. Transfers: 1
   * when the body did not arrive whole.
   */
  errors: number
  /** Portico's cache statistics over the window (`portico-cache` only). */
  cache?: CacheWindow
  /** The transfer's figures (upload-1g and download-1g only). */
  transfer?: Transfer
}

/** A target the run could not measure here. */
export interface Skipped {
  target: TargetName
  reason: string
}

/** A scenario a run left out for some targets (or, with no targets, for all), and why. */
export interface NotMeasured {
  scenario: ScenarioId
  targets: TargetName[]
  reason: string
}

/** Steal time in one measured window above which the summary says the figures are noisy. */
const STEAL_WARNING_SECONDS = 0.2

/** Portico's figures divided by a peer's, in the same run. Null where either side is missing. */
export interface Ratio {
  peer: TargetName
  getRps: number | null
  getCpu: number | null
  postRps: number | null
  postCpu: number | null
  idlePeakRss: number | null
  httpsRps: number | null
  httpsCpu: number | null
  h2Rps: number | null
  h2Cpu: number | null
  get100kRps: number | null
  get100kCpu: number | null
  busyRps: number | null
  busyCpu: number | null
  busyPeakRss: number | null
  idle10kPeakRss: number | null
  /** RSS after start and verification: the median over the target's fresh instances of the run. */
  startRss: number | null
  /** CPU seconds of the whole 1 GiB transfer. */
  uploadCpu: number | null
  uploadPeakRss: number | null
  downloadCpu: number | null
  downloadPeakRss: number | null
}

const COLUMNS = ['target', 'scenario', 'req/s', 'p99 ms', 'mean ms', 'CPU s/10k req', 'of which sys', 'CPU %', 'start RSS MiB', 'peak RSS MiB', 'errors', 'steal s'] as const
const LEFT = new Set<string>(['target', 'scenario'])

function fixed (n: number | null, digits: number): string {
  return n === null ? '-' : n.toFixed(digits)
}

function renderTable (header: readonly string[], rows: string[][], left: Set<string>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => left.has(header[i]) ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ').trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/** The results table, one row per measurement in run order. */
export function formatTable (measurements: readonly Measurement[]): string {
  const rows = measurements.map((m) => [
    m.target,
    SCENARIO_LABELS[m.scenario],
    fixed(m.requestsPerSecond, 0),
    fixed(m.p99Ms, 2),
    fixed(m.meanMs ?? null, 2),
    fixed(m.cpuSecondsPer10k, 3),
    fixed(m.systemCpuSecondsPer10k, 3),
    fixed(m.cpuPercent, 0),
    fixed(m.startRssMiB, 1),
    fixed(m.peakRssMiB, 1),
    String(m.errors),
    fixed(m.stealSeconds, 2)
  ])
  return renderTable(COLUMNS, rows, LEFT)
}

function median (values: readonly (number | null)[]): number | null {
  const xs = values.filter((v): v is number => v !== null).sort((a, b) => a - b)
  if (xs.length === 0) return null
  const mid = xs.length >> 1
  return xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2
}

/**
 * One measurement per target and scenario from several rounds, in first-seen order: the median of each figure,
 * the sum of errors and the largest steal. One round is returned as it is.
 */
export function medianOfRounds (ms: readonly Measurement[]): Measurement[] {
  const groups = new Map<string, Measurement[]>()
  for (const m of ms) {
    const key = `${m.target} ${m.scenario}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [m])
    else group.push(m)
  }
  return [...groups.values()].map((g) => {
    const of = (field: 'requests' | 'requestsPerSecond' | 'p99Ms' | 'meanMs' | 'cpuSecondsPer10k' | 'cpuPercent' | 'systemCpuSecondsPer10k'): number | null =>
      median(g.map((m) => m[field]))
    return {
      target: g[0].target,
      scenario: g[0].scenario,
      connections: g[0].connections,
      requests: of('requests'),
      requestsPerSecond: of('requestsPerSecond'),
      p99Ms: of('p99Ms'),
      meanMs: of('meanMs'),
      cpuSecondsPer10k: of('cpuSecondsPer10k'),
      cpuPercent: of('cpuPercent'),
      systemCpuSecondsPer10k: of('systemCpuSecondsPer10k'),
      startRssMiB: median(g.map((m) => m.startRssMiB)) ?? 0,
      ...(g[0].settledRssMiB === undefined ? {} : { settledRssMiB: median(g.map((m) => m.settledRssMiB as number)) ?? 0 }),
      rssMiB: median(g.map((m) => m.rssMiB)) ?? 0,
      peakRssMiB: median(g.map((m) => m.peakRssMiB)) ?? 0,
      stealSeconds: Math.max(...g.map((m) => m.stealSeconds)),
      errors: g.reduce((sum, m) => sum + m.errors, 0),
      ...(g[0].cache === undefined ? {} : { cache: sumCacheWindows(g.map((m) => m.cache as CacheWindow)) }),
      ...(g[0].transfer === undefined ? {} : { transfer: medianTransfer(g.map((m) => m.transfer as Transfer)) })
    }
  })
}

/** Several rounds' transfers: the median of each figure. */
function medianTransfer (ts: readonly Transfer[]): Transfer {
  const of = (f: keyof Transfer): number => median(ts.map((t) => t[f])) ?? 0
  return {
    bytes: of('bytes'),
    seconds: of('seconds'),
    mibPerSecond: of('mibPerSecond'),
    cpuSeconds: of('cpuSeconds'),
    systemCpuSeconds: of('systemCpuSeconds'),
    growthMiB: of('growthMiB')
  }
}

/** The median RSS after start of `target` over all its measurements (each one a fresh instance), or null. */
export function medianStartRss (ms: readonly Measurement[], target: TargetName): number | null {
  return median(ms.filter((m) => m.target === target).map((m) => m.startRssMiB))
}

/** Several rounds' cache statistics: counters summed, the largest store size. */
function sumCacheWindows (ws: readonly CacheWindow[]): CacheWindow {
  const sum = (f: 'requests' | 'hits' | 'misses' | 'stored' | 'collapsed' | 'bypassed' | 'storeErrors'): number => ws.reduce((n, w) => n + w[f], 0)
  const bytes = ws.map((w) => w.bytes).filter((b): b is number => b !== null)
  return {
    requests: sum('requests'),
    hits: sum('hits'),
    misses: sum('misses'),
    stored: sum('stored'),
    collapsed: sum('collapsed'),
    bypassed: sum('bypassed'),
    storeErrors: sum('storeErrors'),
    bytes: bytes.length === 0 ? null : Math.max(...bytes),
    maxBytes: ws[0].maxBytes
  }
}

/** The measurement of `target` in `scenario`, if the run has one. */
export function findMeasurement (ms: readonly Measurement[], target: TargetName, scenario: ScenarioId): Measurement | undefined {
  return ms.find((m) => m.target === target && m.scenario === scenario)
}

function divide (a: number | null | undefined, b: number | null | undefined): number | null {
  return a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b
}

/** Ratios of `subject` (Portico by default) to every other measured target except the origin. */
export function computeRatios (ms: readonly Measurement[], subject: TargetName = 'portico'): Ratio[] {
  const peers = [...new Set(ms.map((m) => m.target))].filter((t) => t !== subject && t !== 'origin')
  if (!ms.some((m) => m.target === subject)) return []
  const ratio = (peer: TargetName, scenario: ScenarioId, field: 'requestsPerSecond' | 'cpuSecondsPer10k' | 'peakRssMiB'): number | null =>
    divide(findMeasurement(ms, subject, scenario)?.[field], findMeasurement(ms, peer, scenario)?.[field])
  const transferCpu = (peer: TargetName, scenario: ScenarioId): number | null =>
    divide(findMeasurement(ms, subject, scenario)?.transfer?.cpuSeconds, findMeasurement(ms, peer, scenario)?.transfer?.cpuSeconds)
  return peers.map((peer) => ({
    peer,
    getRps: ratio(peer, 'get-1k', 'requestsPerSecond'),
    getCpu: ratio(peer, 'get-1k', 'cpuSecondsPer10k'),
    postRps: ratio(peer, 'post-1m', 'requestsPerSecond'),
    postCpu: ratio(peer, 'post-1m', 'cpuSecondsPer10k'),
    idlePeakRss: ratio(peer, 'idle-1000', 'peakRssMiB'),
    httpsRps: ratio(peer, 'https-get-1k', 'requestsPerSecond'),
    httpsCpu: ratio(peer, 'https-get-1k', 'cpuSecondsPer10k'),
    h2Rps: ratio(peer, 'h2-get-1k', 'requestsPerSecond'),
    h2Cpu: ratio(peer, 'h2-get-1k', 'cpuSecondsPer10k'),
    get100kRps: ratio(peer, 'get-100k', 'requestsPerSecond'),
    get100kCpu: ratio(peer, 'get-100k', 'cpuSecondsPer10k'),
    busyRps: ratio(peer, 'busy-1000', 'requestsPerSecond'),
    busyCpu: ratio(peer, 'busy-1000', 'cpuSecondsPer10k'),
    busyPeakRss: ratio(peer, 'busy-1000', 'peakRssMiB'),
    idle10kPeakRss: ratio(peer, 'idle-10000', 'peakRssMiB'),
    startRss: divide(medianStartRss(ms, subject), medianStartRss(ms, peer)),
    uploadCpu: transferCpu(peer, 'upload-1g'),
    uploadPeakRss: ratio(peer, 'upload-1g', 'peakRssMiB'),
    downloadCpu: transferCpu(peer, 'download-1g'),
    downloadPeakRss: ratio(peer, 'download-1g', 'peakRssMiB')
  }))
}

const times = (n: number | null): string => n === null ? '-' : `${n.toFixed(2)}x`

/**
 * The ratio tables: Portico / peer, per figure (req/s: higher is better for Portico; CPU and RSS: lower). The
 * cleartext scenarios of issue #2 in one, HTTPS and HTTP/2 in another, issue #14's in two more (GET 100 KiB,
 * busy and 10,000 idle connections, start RSS; the 1 GiB transfers); a peer with no figure in a table has no row
 * there, and a table without rows is left out (empty string). The start RSS column is only printed beside
 * another figure of its table.
 */
export function formatRatios (ratios: readonly Ratio[]): string {
  const tables: string[] = []
  const table = (header: string[], cells: (r: Ratio) => (number | null)[]): void => {
    const rows = ratios.filter((r) => cells(r).some((c) => c !== null)).map((r) => [r.peer, ...cells(r).map(times)])
    if (rows.length > 0) tables.push(renderTable(header, rows, new Set(['portico / peer'])))
  }
  table(['portico / peer', 'GET req/s', 'GET CPU/10k', 'POST req/s', 'POST CPU/10k', 'idle peak RSS'],
    (r) => [r.getRps, r.getCpu, r.postRps, r.postCpu, r.idlePeakRss])
  table(['portico / peer', 'HTTPS req/s', 'HTTPS CPU/10k', 'HTTP/2 req/s', 'HTTP/2 CPU/10k'],
    (r) => [r.httpsRps, r.httpsCpu, r.h2Rps, r.h2Cpu])
  const hasIssue14 = ratios.some((r) => [r.get100kRps, r.get100kCpu, r.busyRps, r.busyCpu, r.busyPeakRss, r.idle10kPeakRss].some((c) => c !== null))
  if (hasIssue14) {
    table(['portico / peer', 'GET 100k req/s', 'GET 100k CPU/10k', 'busy req/s', 'busy CPU/10k', 'busy peak RSS', '10k idle peak RSS', 'start RSS'],
      (r) => [r.get100kRps, r.get100kCpu, r.busyRps, r.busyCpu, r.busyPeakRss, r.idle10kPeakRss, r.startRss])
  }
  table(['portico / peer', 'upload 1G CPU s', 'upload 1G peak RSS', 'download 1G CPU s', 'download 1G peak RSS'],
    (r) => [r.uploadCpu, r.uploadPeakRss, r.downloadCpu, r.downloadPeakRss])
  return tables.join('\n\n')
}

/** How long an instance sits idle after start before its settled RSS is read (the idle scenario only). */
export const SETTLE_SECONDS = 10

/**
 * Each target's RSS right after start and the verifying requests, before any load ("idle after start"): the
 * median, least and most over the fresh instances the run started of it (one per scenario and round); and the
 * median RSS after `SETTLE_SECONDS` more of idleness, where the run measured it.
 */
export function formatStartRss (ms: readonly Measurement[]): string {
  const targets = [...new Set(ms.map((m) => m.target))]
  const rows = targets.map((t) => {
    const values = ms.filter((m) => m.target === t).map((m) => m.startRssMiB)
    const settled = median(ms.filter((m) => m.target === t && m.settledRssMiB !== undefined).map((m) => m.settledRssMiB as number))
    return [t, fixed(medianStartRss(ms, t), 1), fixed(Math.min(...values), 1), fixed(Math.max(...values), 1), String(values.length), fixed(settled, 1)]
  })
  return renderTable(['idle after start', 'RSS MiB', 'least', 'most', 'instances', `after ${SETTLE_SECONDS} s idle`], rows, new Set(['idle after start']))
}

/**
 * The 1 GiB transfers, one row per target and direction: throughput, wall time, the target's CPU seconds for the
 * whole transfer, RSS after start, peak RSS during the transfer and the growth between them. Empty string when
 * the run has none.
 */
export function formatTransfers (ms: readonly Measurement[]): string {
  const rows = ms.filter((m) => m.transfer !== undefined).map((m) => {
    const t = m.transfer as Transfer
    return [m.target, SCENARIO_LABELS[m.scenario], fixed(t.mibPerSecond, 0), fixed(t.seconds, 2), fixed(t.cpuSeconds, 2), fixed(t.systemCpuSeconds, 2),
      fixed(m.startRssMiB, 1), fixed(m.peakRssMiB, 1), fixed(t.growthMiB, 1), String(m.errors)]
  })
  if (rows.length === 0) return ''
  const header = ['transfer', 'scenario', 'MiB/s', 'seconds', 'CPU s', 'of which sys', 'start RSS MiB', 'peak RSS MiB', 'growth MiB', 'errors']
  return renderTable(header, rows, new Set(['transfer', 'scenario']))
}

/** What terminating TLS costs Portico: HTTPS GET 1 KiB divided by cleartext GET 1 KiB, both over HTTP/1.1. */
function tlsLine (ms: readonly Measurement[]): string | null {
  const tls = findMeasurement(ms, 'portico', 'https-get-1k')
  const clear = findMeasurement(ms, 'portico', 'get-1k')
  if (tls === undefined || clear === undefined) return null
  return `Portico HTTPS / cleartext, GET 1 KiB: CPU per 10k ${times(divide(tls.cpuSecondsPer10k, clear.cpuSecondsPer10k))}, ` +
    `req/s ${times(divide(tls.requestsPerSecond, clear.requestsPerSecond))}`
}

/** The access log's cost: Portico with it on divided by Portico with it off, GET 1 KiB. */
function accessLogLine (ms: readonly Measurement[]): string | null {
  const on = findMeasurement(ms, 'portico-log', 'get-1k')
  const off = findMeasurement(ms, 'portico', 'get-1k')
  if (on === undefined || off === undefined) return null
  return `Portico access log on / off, GET 1 KiB: CPU per 10k ${times(divide(on.cpuSecondsPer10k, off.cpuSecondsPer10k))}, ` +
    `req/s ${times(divide(on.requestsPerSecond, off.requestsPerSecond))}`
}

/**
 * What embedding costs: Portico inside an Express app divided by Portico standalone, GET 1 KiB, and the embedded
 * Portico's throughput against node-http-proxy's (the issue #2 comparison, made for the embedded form).
 */
function expressLine (ms: readonly Measurement[]): string | null {
  const embedded = findMeasurement(ms, 'portico-express', 'get-1k')
  const standalone = findMeasurement(ms, 'portico', 'get-1k')
  if (embedded === undefined || standalone === undefined) return null
  const peer = findMeasurement(ms, 'http-proxy', 'get-1k')
  return `Portico in Express / standalone, GET 1 KiB: CPU per 10k ${times(divide(embedded.cpuSecondsPer10k, standalone.cpuSecondsPer10k))}, ` +
    `req/s ${times(divide(embedded.requestsPerSecond, standalone.requestsPerSecond))}` +
    (peer === undefined ? '' : `; in Express / node-http-proxy, req/s ${times(divide(embedded.requestsPerSecond, peer.requestsPerSecond))}`)
}

/** Names the window with the most steal time when it passes the warning level. */
function stealLine (ms: readonly Measurement[]): string | null {
  let worst: Measurement | undefined
  for (const m of ms) if (worst === undefined || m.stealSeconds > worst.stealSeconds) worst = m
  if (worst === undefined || worst.stealSeconds < STEAL_WARNING_SECONDS) return null
  return `note: the hypervisor stole up to ${worst.stealSeconds.toFixed(2)} CPU s in one window ` +
    `(${worst.target}, ${SCENARIO_LABELS[worst.scenario]}); figures from such windows are noisier`
}

/** Everything a run prints at the end: the table, the ratios, the issue #2 verdict and notes. */
export function formatSummary (ms: readonly Measurement[], ratios: readonly Ratio[], skipped: readonly Skipped[], notMeasured: readonly NotMeasured[] = [],
  rounds = 1): string {
  const out: string[] = ['', formatTable(ms), '']
  if (ms.length > 0) out.push(formatStartRss(ms), '')
  const transfers = formatTransfers(ms)
  if (transfers !== '') out.push(transfers, '')
  const ratioTables = formatRatios(ratios)
  if (ratioTables !== '') out.push(ratioTables, '')
  for (const line of [issue2Verdict(ratios), accessLogLine(ms), expressLine(ms), tlsLine(ms)]) if (line !== null) out.push(line)
  const cacheRatios = computeCacheRatios(ms)
  if (cacheRatios.some((r) => r.rps !== null || r.cpu !== null)) {
    if (out[out.length - 1] !== '') out.push('')
    out.push(formatCacheRatios(cacheRatios), '')
  }
  for (const line of [cacheVerdict(cacheRatios), ...cacheWindowLines(ms, rounds), stealLine(ms)]) if (line !== null) out.push(line)
  if (ms.some((m) => m.scenario === 'busy-1000')) {
    out.push(`note: ${SCENARIO_LABELS['busy-1000']}: wrk opens its 1,000 connections at once; beyond a target's listen backlog (511 by ` +
      'default for Node and nginx) the kernel drops handshakes, and those first requests wait for its retransmission (1 s, then 2 s): ' +
      'it shows in the p99 of short windows, and as timeouts (errors)')
  }
  if (ms.some((m) => m.scenario === 'h2-get-1k')) out.push(`note: ${SCENARIO_LABELS['h2-get-1k']} is h2load, which gives no percentiles: its rows have a mean latency and no p99`)
  for (const n of notMeasured) {
    out.push(`not measured: ${SCENARIO_LABELS[n.scenario]}${n.targets.length > 0 ? ` for ${n.targets.join(', ')}` : ''}: ${n.reason}`)
  }
  for (const s of skipped) out.push(`skipped ${s.target}: ${s.reason}`)
  return `${out.join('\n')}\n`
}

/** The issue #2 check: Portico's GET 1 KiB throughput at least node-http-proxy's in the same run. */
export function issue2Verdict (ratios: readonly Ratio[]): string | null {
  const r = ratios.find((x) => x.peer === 'http-proxy')?.getRps
  if (r === null || r === undefined) return null
  return `issue #2 (Portico GET 1 KiB req/s >= node-http-proxy's): ${r >= 1 ? 'PASS' : 'FAIL'} (${times(r)})`
}

/** One comparison of the cache scenarios: `subject` over `peer`, in `scenario`. */
export interface CacheRatio {
  /** What is compared, e.g. `Portico hit / Portico forward`. */
  label: string
  scenario: ScenarioId
  subject: TargetName
  peer: TargetName
  rps: number | null
  cpu: number | null
  p99: number | null
  peakRss: number | null
}

const CACHE_COMPARISONS: readonly { label: string, scenario: ScenarioId, subject: TargetName, peer: TargetName }[] = [
  { label: 'Portico hit / Portico forward', scenario: 'cache-hit', subject: 'portico-cache', peer: 'portico' },
  { label: 'Portico hit / nginx proxy_cache hit', scenario: 'cache-hit', subject: 'portico-cache', peer: 'nginx-cache' },
  { label: 'Portico hit / origin direct', scenario: 'cache-hit', subject: 'portico-cache', peer: 'origin' },
  { label: 'nginx proxy_cache hit / nginx forward', scenario: 'cache-hit', subject: 'nginx-cache', peer: 'nginx' },
  { label: 'Portico cache / Portico no cache', scenario: 'cache-mix', subject: 'portico-cache', peer: 'portico' },
  { label: 'Portico cache / nginx proxy_cache', scenario: 'cache-mix', subject: 'portico-cache', peer: 'nginx-cache' },
  { label: 'nginx proxy_cache / nginx no cache', scenario: 'cache-mix', subject: 'nginx-cache', peer: 'nginx' }
]

/** The cache scenarios' comparisons that the run has both sides of. */
export function computeCacheRatios (ms: readonly Measurement[]): CacheRatio[] {
  const out: CacheRatio[] = []
  for (const c of CACHE_COMPARISONS) {
    const a = findMeasurement(ms, c.subject, c.scenario)
    const b = findMeasurement(ms, c.peer, c.scenario)
    if (a === undefined || b === undefined) continue
    out.push({
      ...c,
      rps: divide(a.requestsPerSecond, b.requestsPerSecond),
      cpu: divide(a.cpuSecondsPer10k, b.cpuSecondsPer10k),
      p99: divide(a.p99Ms, b.p99Ms),
      peakRss: divide(a.peakRssMiB, b.peakRssMiB)
    })
  }
  return out
}

/** The cache ratio table (req/s: higher is better for the subject; CPU, p99 and RSS: lower). */
export function formatCacheRatios (ratios: readonly CacheRatio[]): string {
  const header = ['cache comparison', 'scenario', 'req/s', 'CPU/10k', 'p99', 'peak RSS']
  const rows = ratios.map((r) => [r.label, SCENARIO_LABELS[r.scenario], times(r.rps), times(r.cpu), times(r.p99), times(r.peakRss)])
  return renderTable(header, rows, new Set(['cache comparison', 'scenario']))
}

/** The cache issue's check: a cache hit costs Portico less CPU per request than forwarding the same request. */
export function cacheVerdict (ratios: readonly CacheRatio[]): string | null {
  const r = ratios.find((x) => x.subject === 'portico-cache' && x.peer === 'portico' && x.scenario === 'cache-hit')?.cpu
  if (r === null || r === undefined) return null
  return `cache target (Portico hit CPU per 10k < Portico forward's): ${r < 1 ? 'PASS' : 'FAIL'} (${times(r)})`
}

/** What Portico's cache counted in each cache window (all rounds together), from its admin statistics. */
function cacheWindowLines (ms: readonly Measurement[], rounds: number): string[] {
  const size = (b: number): string => b < 1024 * 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / 1024 / 1024).toFixed(1)} MiB`
  return ms.filter((m) => m.cache !== undefined).map((m) => {
    const c = m.cache as CacheWindow
    return `${m.target} ${SCENARIO_LABELS[m.scenario]} (cache statistics over the window${rounds > 1 ? `s of ${rounds} rounds` : ''}, ` +
      `${c.requests} requests by the load generator): ` +
      `${c.hits} hits, ${c.misses} misses, ${c.stored} stored, ${c.collapsed} collapsed, ${c.bypassed} bypassed, ${c.storeErrors} store errors; ` +
      `store ${c.bytes === null ? '?' : size(c.bytes)} of ${size(c.maxBytes)} after it`
  })
}
