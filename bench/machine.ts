/**
 * A description of what a run measured on, printed above the results and stored in the JSON record: the
 * machine (core count, CPU model, Node version, versions of the native peers) and the Portico revision (commit,
 * and whether src/ had uncommitted changes, since `npm run bench` builds the working tree).
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { HAPROXY_BIN, NGINX_BIN, hasBinary } from './peers/native.js'

/** What a run records about its machine. */
export interface MachineInfo {
  cores: number
  cpuModel: string
  kernel: string
  node: string
  nginx: string | null
  haproxy: string | null
}

/** First line a command prints on stdout or stderr (nginx -v writes to stderr), or null when it cannot run. */
function firstLine (cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.error !== undefined) return null
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? null
}

function cpuModel (): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown'
  } catch {
    return os.cpus()[0]?.model ?? 'unknown'
  }
}

/** The Portico revision being measured. */
export interface RevisionInfo {
  /** `git rev-parse --short HEAD`, or null outside a git checkout. */
  commit: string | null
  /** True when src/ or bin/ differ from the commit. */
  uncommittedChanges: boolean
}

/** Describes the checkout at `root`. */
export function describeRevision (root: string): RevisionInfo {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' })
  if (head.error !== undefined || head.status !== 0) return { commit: null, uncommittedChanges: false }
  const status = spawnSync('git', ['status', '--porcelain', '--', 'src', 'bin'], { cwd: root, encoding: 'utf8' })
  return { commit: head.stdout.trim(), uncommittedChanges: status.stdout.trim() !== '' }
}

/** Describes this machine. */
export function describeMachine (): MachineInfo {
  return {
    // All online cores, not this process's affinity (the run pins itself to one).
    cores: os.cpus().length,
    cpuModel: cpuModel(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: hasBinary(NGINX_BIN) ? firstLine(NGINX_BIN, ['-v']) : null,
    haproxy: hasBinary(HAPROXY_BIN) ? firstLine(HAPROXY_BIN, ['-v']) : null
  }
}
