/**
 * HTTP/2 load: nghttp2's h2load, pinned to the load core like wrk, over TLS with ALPN h2, for a fixed duration
 * (`-D`) on a fixed number of connections each carrying several concurrent streams. It yields the figures wrk
 * does except the p99: h2load prints only min, max, mean and standard deviation of request times, so p99 is null
 * and the mean stands in. When h2load is not installed the caller skips the HTTP/2 scenario.
 */
import { existsSync } from 'node:fs'
import { runCommand } from './children.js'
import { toMs, type LoadResult } from './load.js'

/** Where Debian's nghttp2-client installs h2load. */
export const H2LOAD_BIN = '/usr/bin/h2load'

/** True when h2load is installed. */
export function hasH2load (): boolean {
  return existsSync(H2LOAD_BIN)
}

/** One h2load run: GET `url` on `connections` connections with up to `streams` concurrent streams each. */
export interface H2LoadSpec {
  url: string
  connections: number
  streams: number
  seconds: number
}

/** Runs h2load pinned to `core` and parses what it printed. */
export async function runH2load (spec: H2LoadSpec, core: number): Promise<LoadResult> {
  const args = ['-t1', `-c${spec.connections}`, `-m${spec.streams}`, `-D${spec.seconds}`, spec.url]
  return parseH2loadOutput(await runCommand(H2LOAD_BIN, args, core, (spec.seconds + 30) * 1000))
}

/**
 * Parses h2load's summary: `finished in 3.00s, 6000.00 req/s, ...`, the `requests:` line (done, failed, errored,
 * timed out; non-2xx answers count as failed) and the mean of `time for request`. Throws when a figure is
 * missing, or when the connections did not negotiate h2 (h2load falls back to HTTP/1.1 without saying so in the
 * summary).
 */
export function parseH2loadOutput (out: string): LoadResult {
  const finished = /^finished in ([\d.]+)(us|ms|s|m|h), ([\d.]+) req\/s/m.exec(out)
  const requests = /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(out)
  const time = /^time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s/m.exec(out)
  if (finished === null || requests === null || time === null) throw new Error(`cannot parse h2load output:\n${out}`)
  const alpn = /^Application protocol: (\S+)/m.exec(out)?.[1]
  if (alpn !== 'h2') throw new Error(`h2load did not negotiate h2 (application protocol ${alpn ?? 'not printed'}):\n${out}`)
  const [failed, errored, timedOut] = [requests[5], requests[6], requests[7]].map(Number)
  return {
    requests: Number(requests[3]),
    requestsPerSecond: Number(finished[3]),
    p99Ms: null,
    meanMs: toMs(time[5], time[6]),
    errors: failed + errored + timedOut
  }
}
