/**
 * The benchmark's option parsing and report (bench/options.ts, bench/report.ts) and the native peers' limits
 * (bench/peers/native.ts): the scenario names of issue #14, their ratios, the start RSS and transfer tables.
 * No measuring: the measurements here are made up.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SCENARIO_NAMES, parseOptions } from '../../bench/options.js'
import { computeRatios, formatStartRss, formatSummary, formatTransfers, medianOfRounds, type Measurement, type ScenarioId } from '../../bench/report.js'
import { haproxyConfig, nginxConfig } from '../../bench/peers/native.js'
import type { TargetName } from '../../bench/targets.js'

function measurement (target: TargetName, scenario: ScenarioId, figures: Partial<Measurement> = {}): Measurement {
  return {
    target,
    scenario,
    connections: 1,
    requests: null,
    requestsPerSecond: null,
    p99Ms: null,
    meanMs: null,
    cpuSecondsPer10k: null,
    cpuPercent: null,
    systemCpuSecondsPer10k: null,
    startRssMiB: 50,
    rssMiB: 60,
    peakRssMiB: 70,
    stealSeconds: 0,
    errors: 0,
    ...figures
  }
}

function transfer (target: TargetName, scenario: ScenarioId, cpuSeconds: number, peakRssMiB: number): Measurement {
  return measurement(target, scenario, {
    peakRssMiB,
    transfer: { bytes: 1024 ** 3, seconds: 2, mibPerSecond: 512, cpuSeconds, systemCpuSeconds: cpuSeconds / 2, growthMiB: peakRssMiB - 50 }
  })
}

test('the issue #14 scenarios have option names, in run order', () => {
  assert.deepEqual(parseOptions(['--scenarios', 'down1g,get100k,idle10k,busy,up1g'], {}).scenarios,
    ['get-100k', 'busy-1000', 'idle-10000', 'upload-1g', 'download-1g'])
  for (const id of ['get-100k', 'busy-1000', 'idle-10000', 'upload-1g', 'download-1g']) assert.ok(Object.values(SCENARIO_NAMES).includes(id as ScenarioId))
  assert.ok(parseOptions([], {}).scenarios.includes('idle-10000'), 'in the default run')
})

test('ratios: GET 100 KiB, busy and 10,000 idle connections, start RSS, the transfers', () => {
  const ms = [
    measurement('portico', 'get-100k', { requestsPerSecond: 200, cpuSecondsPer10k: 2 }),
    measurement('nginx', 'get-100k', { requestsPerSecond: 400, cpuSecondsPer10k: 1, startRssMiB: 10 }),
    measurement('portico', 'busy-1000', { requestsPerSecond: 100, cpuSecondsPer10k: 3, peakRssMiB: 120 }),
    measurement('nginx', 'busy-1000', { requestsPerSecond: 100, cpuSecondsPer10k: 1, peakRssMiB: 20, startRssMiB: 10 }),
    measurement('portico', 'idle-10000', { peakRssMiB: 150 }),
    measurement('nginx', 'idle-10000', { peakRssMiB: 30, startRssMiB: 10 }),
    transfer('portico', 'upload-1g', 2, 110),
    transfer('nginx', 'upload-1g', 1, 11),
    transfer('portico', 'download-1g', 1, 100),
    transfer('nginx', 'download-1g', 2, 10)
  ]
  const [r] = computeRatios(ms)
  assert.equal(r.peer, 'nginx')
  assert.equal(r.get100kRps, 0.5)
  assert.equal(r.get100kCpu, 2)
  assert.equal(r.busyCpu, 3)
  assert.equal(r.busyPeakRss, 6)
  assert.equal(r.idle10kPeakRss, 5)
  assert.equal(r.uploadCpu, 2)
  assert.equal(r.uploadPeakRss, 10)
  assert.equal(r.downloadCpu, 0.5)
  assert.equal(r.downloadPeakRss, 10)
  assert.equal(r.startRss, 5)
  const text = formatSummary(ms, computeRatios(ms), [])
  assert.match(text, /10k idle peak RSS/)
  assert.match(text, /download 1G peak RSS/)
  assert.match(text, /^idle after start/m)
  assert.match(text, /^transfer\s+scenario/m)
})

test('the start RSS table: median, least and most over the fresh instances', () => {
  const ms = [50, 40, 60].map((startRssMiB, i) => measurement('portico', (['get-1k', 'post-1m', 'idle-1000'] as const)[i], { startRssMiB }))
  const row = formatStartRss(ms).split('\n')[2]
  assert.deepEqual(row.split(/\s+/), ['portico', '50.0', '40.0', '60.0', '3', '-'])
  ms[2].settledRssMiB = 45
  assert.deepEqual(formatStartRss(ms).split('\n')[2].split(/\s+/), ['portico', '50.0', '40.0', '60.0', '3', '45.0'])
})

test('the transfer table, and transfers over rounds are medians', () => {
  assert.equal(formatTransfers([measurement('portico', 'get-1k')]), '')
  const rounds = medianOfRounds([transfer('portico', 'upload-1g', 1, 80), transfer('portico', 'upload-1g', 3, 90), transfer('portico', 'upload-1g', 2, 100)])
  assert.equal(rounds.length, 1)
  assert.equal(rounds[0].transfer?.cpuSeconds, 2)
  assert.equal(rounds[0].transfer?.growthMiB, 40)
  assert.match(formatTransfers(rounds), /portico\s+upload 1 GiB\s+512\s+2\.00\s+2\.00/)
})

test('nginx and HAProxy are sized for 10,000 connections, and unchanged for fewer', () => {
  const base = { dir: '/tmp/x', port: 1, originPort: 2 }
  assert.match(nginxConfig(base), /worker_rlimit_nofile 8192;[\s\S]*worker_connections 4096;/)
  assert.equal(nginxConfig({ ...base, connections: 1000 }), nginxConfig(base))
  assert.match(nginxConfig({ ...base, connections: 10_000, fileLimit: 20_000 }), /worker_rlimit_nofile 20000;[\s\S]*worker_connections 20256;/)
  assert.equal(haproxyConfig({ ...base, connections: 1000, fileLimit: 20_000 }), haproxyConfig(base))
  const big = haproxyConfig({ ...base, connections: 10_000, fileLimit: 20_000 })
  assert.match(big, /global\n {2}nbthread 1\n {2}maxconn 10256\n {2}no strict-limits\n/)
  assert.match(big, /defaults\n {2}mode http\n {2}maxconn 10256\n/)
})
