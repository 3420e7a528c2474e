/**
 * Linux /proc readings for a process and its descendants (nginx's master and worker, for instance): CPU time
 * (utime + stime, all threads), resident memory now (VmRSS) and at its peak (VmHWM), and resetting that peak so
 * each scenario reports its own. Processes that exit between two reads count as zero. Also the machine's steal
 * time, which tells a measurement taken while the hypervisor ran someone else, and this process's limit on open
 * files.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'

let ticksPerSecond: number | undefined

/** Clock ticks per second for /proc times (`getconf CLK_TCK`; 100 when that fails). */
export function clockTicks (): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    } catch {
      ticksPerSecond = 100
    }
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100
  }
  return ticksPerSecond
}

/** The fields of /proc/PID/stat after the command name, which may itself hold spaces and parentheses. */
function statFields (pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return null
  }
}

/** `pid` and every live descendant of it. */
export function processTree (pid: number): number[] {
  const childrenOf = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    const p = Number(entry)
    if (!Number.isInteger(p)) continue
    const fields = statFields(p)
    if (fields === null) continue
    const ppid = Number(fields[1]) // field 4 of stat: the parent's pid
    const list = childrenOf.get(ppid)
    if (list === undefined) childrenOf.set(ppid, [p])
    else list.push(p)
  }
  const out: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    const p = queue.shift() as number
    out.push(p)
    queue.push(...(childrenOf.get(p) ?? []))
  }
  return out
}

/** CPU seconds used so far by `pids` together (all threads), in user and in system (kernel) mode. */
export function cpuSeconds (pids: readonly number[]): { user: number, system: number } {
  let user = 0
  let system = 0
  for (const pid of pids) {
    const fields = statFields(pid)
    if (fields === null) continue
    user += Number(fields[11]) // field 14 of stat: utime
    system += Number(fields[12]) // field 15: stime
  }
  return { user: user / clockTicks(), system: system / clockTicks() }
}

/** Resident memory of `pids` together, in KiB: now and at the peak since start (or since `resetPeak`). */
export function memoryKiB (pids: readonly number[]): { rss: number, peak: number } {
  let rss = 0
  let peak = 0
  for (const pid of pids) {
    let status: string
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8')
    } catch {
      continue
    }
    rss += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0)
    peak += Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0)
  }
  return { rss, peak }
}

/**
 * Resets VmHWM to the current RSS (writing 5 to /proc/PID/clear_refs, Linux 4.0+). Returns false when the
 * kernel refused for any of `pids`; peaks then count from process start.
 */
export function resetPeak (pids: readonly number[]): boolean {
  let ok = true
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5')
    } catch {
      ok = false
    }
  }
  return ok
}

/** CPU seconds stolen by the hypervisor so far, all cores together (the `steal` column of /proc/stat). */
export function stealSeconds (): number {
  try {
    const cpu = /^cpu\s+(.+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1].split(/\s+/)
    return Number(cpu?.[7] ?? 0) / clockTicks()
  } catch {
    return 0
  }
}

/** This process's limit on open file descriptors (RLIMIT_NOFILE), soft and hard; Infinity for `unlimited`. */
export function fileLimit (): { soft: number, hard: number } {
  try {
    const row = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    const n = (v: string | undefined): number => v === undefined || v === 'unlimited' ? Infinity : Number(v)
    return { soft: n(row?.[1]), hard: n(row?.[2]) }
  } catch {
    return { soft: Infinity, hard: Infinity }
  }
}
