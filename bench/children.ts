/**
 * Child processes of the benchmark: spawning them pinned to a core, waiting until they serve, and making sure
 * none outlives the run. Each child leads its own process group, so stopping it also stops what it forked
 * (nginx's worker); every live group is killed from a process 'exit' handler and on SIGINT/SIGTERM, whatever
 * state the run is in.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { GET_PATH } from './fixture.js'
import { fileLimit } from './proc.js'

/** A process started by `spawnChild`. */
export interface Child {
  readonly name: string
  readonly pid: number
  /** Where its stderr (and stdout, unless that goes to /dev/null) is written. */
  readonly logFile: string
  /** Resolves with the exit code (or signal name) when it exits. */
  readonly exited: Promise<number | string>
  readonly process: ChildProcess
}

/** How to start a child. */
export interface SpawnOptions {
  /** Core to pin it to with taskset; unpinned when taskset is missing. */
  core?: number
  logFile: string
  /** Send stdout to /dev/null instead of the log file (the access-log run). Default false. */
  stdoutToNull?: boolean
  cwd?: string
}

const live = new Set<ChildProcess>()
let taskset: boolean | undefined

/** True when `taskset` can be run. */
export function hasTaskset (): boolean {
  taskset ??= spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0
  return taskset
}

/** Pins this process (all its threads) to `core`, so the orchestrator never competes with the proxy under test. */
export function pinSelf (core: number): void {
  if (hasTaskset()) spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' })
}

/**
 * Raises this process's soft limit on open files to its hard limit with `prlimit --pid` (a process may always do
 * that; going beyond the hard limit needs privileges the bench does not ask for). Children started afterwards
 * inherit it: the targets, wrk and the origin. Returns the soft limit then in force (Infinity when unknown).
 */
export function raiseFileLimit (): number {
  const { soft, hard } = fileLimit()
  if (soft < hard && Number.isFinite(hard)) {
    spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], { stdio: 'ignore' })
  }
  return fileLimit().soft
}

/** The command line that runs `cmd args` pinned to `core`. taskset execs, so the pid is the command's. */
function pinnedCommand (cmd: string, args: readonly string[], core: number | undefined): [string, string[]] {
  return core !== undefined && hasTaskset() ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, [...args]]
}

/** Starts `cmd args` in its own process group, pinned to `options.core`. */
export function spawnChild (name: string, cmd: string, args: readonly string[], options: SpawnOptions): Child {
  const [file, argv] = pinnedCommand(cmd, args, options.core)
  const log = openSync(options.logFile, 'a')
  const out = options.stdoutToNull === true ? openSync('/dev/null', 'w') : log
  let proc: ChildProcess
  try {
    proc = spawn(file, argv, { detached: true, stdio: ['ignore', out, log], cwd: options.cwd })
  } finally {
    closeSync(log)
    if (out !== log) closeSync(out)
  }
  live.add(proc)
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc)
      resolve(code ?? signal ?? 'unknown')
    })
    proc.once('error', (err) => {
      live.delete(proc)
      resolve(err.message)
    })
  })
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${file}`)
  return { name, pid: proc.pid, logFile: options.logFile, exited, process: proc }
}

/**
 * Runs `cmd args` pinned to `core` to completion, in its own process group like every child, and resolves with
 * its stdout. Rejects on a non-zero exit (with its stderr) or when it runs longer than `timeoutMs`.
 */
export function runCommand (cmd: string, args: readonly string[], core: number | undefined, timeoutMs: number): Promise<string> {
  const [file, argv] = pinnedCommand(cmd, args, core)
  return new Promise((resolve, reject) => {
    const proc = spawn(file, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(proc)
    const out: Buffer[] = []
    const err: Buffer[] = []
    proc.stdout?.on('data', (chunk: Buffer) => out.push(chunk))
    proc.stderr?.on('data', (chunk: Buffer) => err.push(chunk))
    const timer = setTimeout(() => killGroup(proc, 'SIGKILL'), timeoutMs)
    proc.once('error', (e) => {
      clearTimeout(timer)
      live.delete(proc)
      reject(e)
    })
    proc.once('close', (code, signal) => {
      clearTimeout(timer)
      live.delete(proc)
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'))
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}): ${Buffer.concat(err).toString('utf8').trim()}`))
    })
  })
}

function killGroup (proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return
  try {
    process.kill(-proc.pid, signal)
  } catch {
    // Already gone.
  }
}

/** Stops a child and its process group: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild (child: Child, graceMs = 1000): Promise<void> {
  if (!live.has(child.process)) return
  killGroup(child.process, 'SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), graceMs) })
  const outcome = await Promise.race([child.exited, timeout])
  clearTimeout(timer)
  // SIGKILL the group even after a clean exit of the leader: a forked worker may outlive its master.
  killGroup(child.process, 'SIGKILL')
  if (outcome === 'timeout') await child.exited
}

/** Kills every live child group at once (synchronous: usable from an 'exit' handler). */
export function killAllChildren (): void {
  for (const proc of live) killGroup(proc, 'SIGKILL')
  live.clear()
}

/** Installs the handlers that kill every child when this process exits or is interrupted. Call once. */
export function installCleanup (): void {
  process.on('exit', killAllChildren)
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children\n`)
      killAllChildren()
      process.exit(code)
    })
  }
}

/** The last `lines` lines of a child's log, for error messages. */
export function logTail (child: Child, lines = 20): string {
  try {
    return readFileSync(child.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

function answers (port: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const options = { host: '127.0.0.1', port, path: GET_PATH, agent: false, timeout: 1000 }
    // The bench's certificate is self-signed; verify.ts checks what a TLS target serves.
    const get = (cb: (res: http.IncomingMessage) => void): http.ClientRequest =>
      tls ? https.get({ ...options, rejectUnauthorized: false }, cb) : http.get(options, cb)
    const req = get((res) => {
      res.resume()
      res.on('end', () => resolve(true))
      res.on('error', () => resolve(false))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
  })
}

/**
 * Waits until `port` answers an HTTP request (HTTPS when `tls`). Throws with the child's log when it exits first
 * or after `timeoutMs`.
 */
export async function waitUntilServing (child: Child, port: number, tls = false, timeoutMs = 15_000): Promise<void> {
  let exitedWith: number | string | undefined
  void child.exited.then((code) => { exitedWith = code })
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (exitedWith !== undefined) break
    if (await answers(port, tls)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const why = exitedWith !== undefined ? `exited (${exitedWith})` : `did not answer within ${timeoutMs} ms`
  throw new Error(`${child.name} ${why} on 127.0.0.1:${port}; its log ${child.logFile}:\n${logTail(child)}`)
}
