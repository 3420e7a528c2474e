/**
 * Load generation: wrk (pinned to core 0) when it is installed, autocannon in this process otherwise. Either way a
 * run yields the same figures: requests completed, requests per second, p99 and mean latency and errors (socket
 * errors, timeouts and non-2xx answers). Both speak HTTP/1.1, over TLS for an https URL (keep-alive, so the
 * handshakes amortise; neither checks the certificate); HTTP/2 load is h2load.ts's. A GET load may be a mix
 * instead of one URL: every `hotEvery`-th request the hot path, the others distinct paths never requested before
 * (a per-run prefix and a counter), which is how the miss-heavy cache scenario makes most of its requests misses.
 */
import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { runCommand } from './children.js'
import { UPLOAD_BYTES } from './fixture.js'

/** Where Debian installs wrk. */
export const WRK_BIN = '/usr/bin/wrk'

/**
 * A GET mix: request n (from 1) goes to `hotPath` when n is a multiple of `hotEvery`, else to `uniquePrefix + n`.
 * The prefix must differ between runs (the warm-up and the window included), or the paths would repeat.
 */
export interface PathMix {
  uniquePrefix: string
  hotPath: string
  hotEvery: number
}

/** One load run against one URL (its origin only, when `mix` is given). */
export interface LoadSpec {
  url: string
  method: 'GET' | 'POST'
  connections: number
  seconds: number
  mix?: PathMix
  /** Extra request fields. */
  headers?: Record<string, string>
}

/** What a load run measured. */
export interface LoadResult {
  /** Requests completed in the window. */
  requests: number
  requestsPerSecond: number
  /** Null when the generator reports no percentiles (h2load). */
  p99Ms: number | null
  meanMs: number
  /** Socket errors, timeouts and non-2xx answers. */
  errors: number
}

/** A load generator; `name` is printed with the results. */
export interface LoadGenerator {
  readonly name: string
  run (spec: LoadSpec): Promise<LoadResult>
}

/**
 * wrk pinned to `core` when installed, else autocannon in this process (which the run pins to the same core).
 * `prefer: 'autocannon'` forces the fallback. `dir` is where the wrk POST script is written.
 */
export function createLoadGenerator (dir: string, core: number, prefer?: string): LoadGenerator {
  return existsSync(WRK_BIN) && prefer !== 'autocannon' ? new Wrk(dir, core) : new Autocannon()
}

class Wrk implements LoadGenerator {
  readonly name = 'wrk'
  readonly #postScript: string
  readonly #mixScript: string
  readonly #core: number

  constructor (dir: string, core: number) {
    this.#core = core
    this.#mixScript = path.join(dir, 'mix.lua')
    // One wrk thread (-t1), so one Lua state and one counter: no path repeats within a run.
    writeFileSync(this.#mixScript, [
      'local prefix, hot, every',
      'local n = 0',
      'function init(args)',
      '  prefix, hot, every = args[1], args[2], tonumber(args[3])',
      'end',
      'function request()',
      '  n = n + 1',
      '  if n % every == 0 then return wrk.format("GET", hot) end',
      '  return wrk.format("GET", prefix .. n)',
      'end',
      ''
    ].join('\n'))
    this.#postScript = path.join(dir, 'post-1m.lua')
    writeFileSync(this.#postScript, [
      'wrk.method = "POST"',
      `wrk.body = string.rep("x", ${UPLOAD_BYTES})`,
      'wrk.headers["Content-Type"] = "application/octet-stream"',
      ''
    ].join('\n'))
  }

  async run (spec: LoadSpec): Promise<LoadResult> {
    const args = ['-t1', `-c${spec.connections}`, `-d${spec.seconds}s`, '--latency']
    for (const [name, value] of Object.entries(spec.headers ?? {})) args.push('-H', `${name}: ${value}`)
    if (spec.method === 'POST') args.push('-s', this.#postScript)
    else if (spec.mix !== undefined) args.push('-s', this.#mixScript)
    args.push(spec.url)
    if (spec.mix !== undefined) args.push('--', spec.mix.uniquePrefix, spec.mix.hotPath, String(spec.mix.hotEvery))
    return parseWrkOutput(await runCommand(WRK_BIN, args, this.#core, (spec.seconds + 30) * 1000))
  }
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Milliseconds from a figure and its unit as wrk and h2load print them (`us`, `ms`, `s`, ...). */
export function toMs (value: string, unit: string): number {
  return Number(value) * UNIT_MS[unit]
}

/** Parses `wrk --latency` output. Throws when a figure is missing. */
export function parseWrkOutput (out: string): LoadResult {
  const requests = /^\s*(\d+) requests in /m.exec(out)
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out)
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(out)
  const mean = /^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s/m.exec(out)
  if (requests === null || rps === null || p99 === null || mean === null) throw new Error(`cannot parse wrk output:\n${out}`)
  let errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  if (socket !== null) errors += socket.slice(1).reduce((sum, n) => sum + Number(n), 0)
  return {
    requests: Number(requests[1]),
    requestsPerSecond: Number(rps[1]),
    p99Ms: toMs(p99[1], p99[2]),
    meanMs: toMs(mean[1], mean[2]),
    errors
  }
}

class Autocannon implements LoadGenerator {
  readonly name = 'autocannon'
  readonly #uploadBody = Buffer.alloc(UPLOAD_BYTES, 'x')

  async run (spec: LoadSpec): Promise<LoadResult> {
    // Loaded only when wrk is missing.
    const { default: autocannon } = await import('autocannon')
    const mix = spec.mix
    let n = 0
    const result = await autocannon({
      url: spec.url,
      method: spec.method,
      connections: spec.connections,
      duration: spec.seconds,
      ...(mix === undefined
        ? {}
        : {
            requests: [{
              setupRequest: (req) => {
                n++
                return { ...req, path: n % mix.hotEvery === 0 ? mix.hotPath : `${mix.uniquePrefix}${n}` }
              }
            }]
          }),
      ...(spec.method === 'POST' ? { body: this.#uploadBody, headers: { 'content-type': 'application/octet-stream' } } : { headers: spec.headers })
    })
    return {
      requests: result['2xx'] + result.non2xx,
      requestsPerSecond: (result['2xx'] + result.non2xx) / result.duration,
      p99Ms: result.latency.p99,
      meanMs: result.latency.average,
      errors: result.errors + result.non2xx
    }
  }
}
