/**
 * The test suite's one way to wait for something that happens asynchronously.
 *
 * Every wait is bounded, both in time and in the number of tries, so that a regression makes a test fail instead
 * of hang. The bounds are never timing assertions: nothing checks how long a wait took, and a bound is only
 * there to give up eventually.
 *
 * - `until(check)`: polls `check` until it is truthy and resolves with the last result (true or false); never
 *   rejects. For a caller that asserts on the outcome itself, or that only wants to give something a chance.
 * - `eventually(what, check)`: the same, but fails the test (`assert.fail`) naming `what` when the bound passes.
 * - `within(p, ms, what)`: `p` must settle within `ms`, else the test fails naming `what`.
 * - `sleep(ms)`: a fixed pause, to let something happen (or to give something that must not happen the time to
 *   show itself); never for polling.
 */
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'

export interface PollOptions {
  /** Give up once this much time has passed (default 5000 ms). The check runs at least once, and once after. */
  ms?: number
  /** Pause between tries (default 20 ms). Tries are also bounded in number: ms / every, plus one. */
  every?: number
}

export type Check = () => boolean | Promise<boolean>

const DEFAULT_MS = 5000
const DEFAULT_EVERY = 20

/** A fixed pause: to let something happen, never to poll (use `until` or `eventually` for that). */
export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** One polling run: the last result, and what the last try threw, if it threw. */
async function poll (check: Check, options: PollOptions): Promise<{ ok: boolean, threw: boolean, error: unknown }> {
  const ms = options.ms ?? DEFAULT_MS
  const every = Math.max(1, options.every ?? DEFAULT_EVERY)
  const tries = Math.max(1, Math.ceil(ms / every) + 1)
  const end = performance.now() + ms
  for (let n = 1; ; n++) {
    let ok = false
    let threw = false
    let error: unknown
    try {
      ok = Boolean(await check())
    } catch (err) {
      // A check that throws means "not yet".
      threw = true
      error = err
    }
    if (ok || n >= tries || performance.now() >= end) return { ok, threw, error }
    await sleep(every)
  }
}

/**
 * Polls `check` every `options.every` ms until it returns (or resolves to) a truthy value, or `options.ms` passed.
 * A check that throws counts as "not yet". Resolves with the last result; never rejects.
 */
export async function until (check: Check, options: PollOptions = {}): Promise<boolean> {
  return (await poll(check, options)).ok
}

/**
 * Like `until`, but fails the test with `what` (what was expected, e.g. "the store notices the outage") when
 * `check` is still not truthy after `options.ms`. When the last try threw, the failure says what it threw.
 */
export async function eventually (what: string, check: Check, options: PollOptions = {}): Promise<void> {
  const { ok, threw, error } = await poll(check, options)
  if (ok) return
  const why = threw ? ` (the last check threw: ${error instanceof Error ? error.message : String(error)})` : ''
  assert.fail(`${what}: not within ${options.ms ?? DEFAULT_MS} ms${why}`)
}

/**
 * `p`, which must settle within `ms`: when it has not, the returned promise rejects with an Error naming `what`
 * (so the test fails instead of hanging). The timer is cleared either way.
 */
export function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}
