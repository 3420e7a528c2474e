/**
 * The `portico` command: argv → config → start. `portico check` validates and prints the route table;
 * `portico cert --dev` writes a development certificate; `portico hash-password` prints a password hash for a
 * basic-auth user list (the password from standard input's first line, or typed twice at a terminal, unechoed).
 * Exit status: 0 after a clean shutdown, 2 for an invalid config or usage, 1 for a failure to start.
 * Signals: SIGTERM/SIGINT drain and exit (a second one exits at once); SIGHUP reloads the config file.
 */
import cluster from 'node:cluster'
import http from 'node:http'
import { existsSync, readFileSync, watch } from 'node:fs'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { ConfigError, Proxy, createLogger, loadConfigFile, loadConfigObject, type PorticoConfig, type ResolvedConfig } from '../index.js'
import type { Logger } from '../observability/logger.js'
import { workerCount } from './cluster-size.js'
import { configJsonSchemaText } from '../config/json-schema.js'

const PACKAGE = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json'), 'utf8')) as { version: string }

interface GlobalOptions {
  config?: string
  port?: number
  host?: string
  logLevel?: string
  route?: string[]
  workers?: number | 'auto'
}

function parseWorkers (v: string): number | 'auto' {
  if (v === 'auto') return 'auto'
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('expected a number of workers (1-256) or "auto"')
  return n
}

function parsePort (v: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535')
  return n
}

function parseDays (v: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of days, at least 1')
  return n
}

function collect (v: string, prev: string[] = []): string[] {
  return [...prev, v]
}

/**
 * Parses a quick-mode route: `HOST[/PATH]=URL[,URL...]`, e.g. `api.localhost=http://127.0.0.1:4000` or
 * `'*=http://127.0.0.1:5000'`.
 */
export function parseRouteFlag (spec: string): NonNullable<PorticoConfig['routes']>[number] {
  const eq = spec.indexOf('=')
  if (eq <= 0 || eq === spec.length - 1) throw new InvalidArgumentError(`expected HOST[/PATH]=URL[,URL...], got "${spec}"`)
  const left = spec.slice(0, eq)
  const slash = left.indexOf('/')
  const host = slash === -1 ? left : left.slice(0, slash)
  const routePath = slash === -1 ? undefined : left.slice(slash)
  return { host, ...(routePath === undefined ? {} : { path: routePath }), upstream: spec.slice(eq + 1).split(',') }
}

async function loadFromOptions (opts: GlobalOptions): Promise<{ config: ResolvedConfig, file?: string }> {
  if (opts.route !== undefined && opts.route.length > 0) {
    let routes
    try {
      routes = opts.route.map(parseRouteFlag)
    } catch (err) {
      throw new ConfigError([{ path: ['--route'], message: (err as Error).message }])
    }
    const config = await loadConfigObject({ routes, listen: [{ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080 }] })
    return { config }
  }
  let file = opts.config
  if (file === undefined) {
    if (!existsSync('portico.yaml')) {
      throw new ConfigError([{ path: ['--config'], message: 'no config: pass --config FILE, or --route HOST=URL, or run where portico.yaml is' }], 'no configuration')
    }
    file = 'portico.yaml'
  }
  return { config: applyListenOverrides(await loadConfigFile(file), opts), file }
}

function applyListenOverrides (config: ResolvedConfig, opts: GlobalOptions): ResolvedConfig {
  if (opts.port === undefined && opts.host === undefined) return config
  const [first, ...rest] = config.listen
  return { ...config, listen: [{ ...first, host: opts.host ?? first.host, port: opts.port ?? first.port }, ...rest] }
}

function fail (err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`portico: ${err.message}\n`)
    process.exit(2)
  }
  process.stderr.write(`portico: ${(err as Error)?.message ?? String(err)}\n`)
  process.exit(1)
}

async function serve (opts: GlobalOptions): Promise<void> {
  let loaded: { config: ResolvedConfig, file?: string }
  try {
    loaded = await loadFromOptions(opts)
  } catch (err) {
    fail(err)
  }
  const level = opts.logLevel ?? loaded.config.log.level
  const logger = createLogger({ level })
  const file = loaded.file
  const readConfig = async (): Promise<ResolvedConfig> => {
    if (file === undefined) throw new Error('started without a config file: nothing to read again')
    return applyListenOverrides(await loadConfigFile(file), opts)
  }
  const count = workerCount(opts.workers ?? loaded.config.workers, availableParallelism())
  if (count > 1 && loaded.config.tls?.acme != null && 'dir' in loaded.config.tls.acme.storage) {
    // Each worker would order the same names, and a CA's HTTP-01 request may reach a worker without the token.
    process.stderr.write('portico: tls.acme with storage on disk runs in one process: use workers: 1, or tls.acme.storage.redis (docs/acme.md)\n')
    process.exit(2)
  }
  if (cluster.isPrimary && count > 1) {
    await (await import('./cluster.js')).runPrimary(loaded.config, count, logger, readConfig)
    return
  }
  // A worker answers admin requests the primary hands on, on a loopback port of its own.
  const inWorker = cluster.isWorker
  const ownAdmin = (c: ResolvedConfig): ResolvedConfig => inWorker && c.admin !== null ? { ...c, admin: { ...c.admin, host: '127.0.0.1', port: 0 } } : c
  const proxy = new Proxy(ownAdmin(loaded.config), {
    logger,
    configSource: file === undefined ? undefined : async () => ownAdmin(await readConfig()),
    adminExclusive: inWorker
  })
  let addresses
  try {
    addresses = await proxy.listen()
  } catch (err) {
    logger.fatal({ err }, 'cannot listen')
    logger.flush()
    fail(err)
  }
  logger.info({ listen: addresses.map((a) => a.url), routes: loaded.config.routes.length, version: PACKAGE.version, pid: process.pid }, 'portico started')

  let stopping = false
  const stop = (signal: string): void => {
    // In a worker, the primary's "shutdown" after a signal the worker got itself (Ctrl-C reaches the whole group).
    if (stopping && signal === 'shutdown') return
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now')
      logger.flush()
      process.exit(1)
    }
    stopping = true
    logger.info({ signal, drainTimeout: proxy.config.server.drainTimeout }, 'draining')
    proxy.close({ acceptFor: inWorker ? WORKER_ACCEPT_WHILE_DRAINING_MS : 0 }).then(() => {
      logger.info('stopped')
      logger.flush()
      // A worker leaves the cluster before it exits: connections the primary is handing it right now are given to
      // another worker instead of being lost with this process.
      if (inWorker && cluster.worker !== undefined && cluster.worker.isConnected()) {
        cluster.worker.once('disconnect', () => process.exit(0))
        cluster.worker.disconnect()
        return
      }
      process.exit(0)
    }, (err: unknown) => {
      logger.error({ err }, 'error while closing')
      logger.flush()
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  if (inWorker) {
    ;(await import('./cluster.js')).runWorker(proxy, logger, stop)
    // The primary is gone: nobody will ask this worker to stop any more.
    process.once('disconnect', () => { if (!stopping) stop('disconnect') })
  }
  process.on('SIGHUP', () => {
    proxy.reloadCertificates()
    void proxy.reloadFromSource('signal')
  })
  // The watch follows the config in force: a reload to `watch: false` stops reacting to changes.
  if (file !== undefined && loaded.config.watch) watchConfig(file, () => { if (proxy.config.watch) void proxy.reloadFromSource('file') }, logger)
}

/** A draining cluster worker keeps accepting (answering `Connection: close`) this long before it stops. */
const WORKER_ACCEPT_WHILE_DRAINING_MS = 1000

/** How long a config file must stay unchanged before a change reloads it (editors write in several steps). */
const WATCH_DEBOUNCE_MS = 300

/**
 * Reloads when the config file changes: watches its directory (an editor's save replaces the file, which a watch
 * on the file itself would lose), debounced. A reload of an invalid file keeps the running config.
 */
function watchConfig (file: string, reload: () => void, logger: Logger): void {
  const full = path.resolve(file)
  let timer: NodeJS.Timeout | null = null
  try {
    const watcher = watch(path.dirname(full), (_event, name) => {
      if (name !== null && name !== path.basename(full)) return
      if (timer !== null) clearTimeout(timer)
      timer = setTimeout(() => {
        timer = null
        reload()
      }, WATCH_DEBOUNCE_MS)
      timer.unref()
    })
    watcher.unref()
    watcher.on('error', (err) => logger.warn({ err: err.message, file: full }, 'config file watch stopped'))
  } catch (err) {
    logger.warn({ err: (err as Error).message, file: full }, 'cannot watch the config file; SIGHUP and the admin API still reload it')
  }
}

/** `portico restart`: POST /workers/restart on the running primary's admin API. */
async function restartCommand (opts: GlobalOptions): Promise<void> {
  let loaded
  try {
    loaded = await loadFromOptions(opts)
  } catch (err) {
    fail(err)
  }
  const admin = loaded.config.admin
  if (admin === null) fail(new Error('the config has no admin listener: a rolling restart goes through it (or send SIGUSR2 to the primary)'))
  const host = admin.host === '0.0.0.0' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host
  const answer = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = http.request({ host, port: admin.port, method: 'POST', path: '/workers/restart', headers: admin.token === null ? {} : { authorization: `Bearer ${admin.token}` } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  }).catch((err: unknown) => fail(new Error(`cannot reach the admin API at ${host}:${admin.port}: ${(err as Error).message}`)))
  process.stdout.write(answer.body)
  if (answer.status !== 200) process.exit(1)
}

async function check (opts: GlobalOptions): Promise<void> {
  let loaded
  try {
    loaded = await loadFromOptions(opts)
  } catch (err) {
    fail(err)
  }
  const proxy = new Proxy(loaded.config)
  const lines: string[] = [`${loaded.file ?? 'command line'}: OK`, 'listen:']
  for (const l of loaded.config.listen) lines.push(`  ${l.host}:${l.port}`)
  lines.push('routes (most specific host first; within a host, longest path first):')
  for (const h of proxy.describeRoutes()) {
    for (const p of h.paths) {
      lines.push(`  ${`${h.host}`.padEnd(28)} ${h.kind.padEnd(9)} ${p.path.padEnd(16)} -> ${p.upstream}${p.stripPrefix ? '  (strip prefix)' : ''}${p.cache ? '  (cached)' : ''}`)
    }
  }
  const cache = loaded.config.cache
  if (cache !== null) {
    const mib = (n: number): string => `${Math.round(n / 1048576 * 10) / 10} MiB`
    lines.push(`cache: ${cache.store === 'redis' ? `redis ${cache.redis?.prefix ?? ''}` : `memory, ${mib(cache.maxSize)}`}, objects up to ${mib(cache.maxObjectSize)}`)
  }
  const admin = loaded.config.admin
  if (admin !== null) lines.push(`admin: ${admin.host}:${admin.port}${admin.token !== null ? ' (bearer token)' : ''}`)
  const acme = loaded.config.tls?.acme ?? null
  if (acme !== null) {
    const [{ openAcmeStorage }, { renewBy }] = await Promise.all([import('../acme/storage.js'), import('../acme/renewal-info.js')])
    const storage = await openAcmeStorage(acme.storage)
    lines.push(`automatic HTTPS: ${acme.directoryUrl}, challenges ${acme.challenges.join(', ')}, storage ${storage.where}; renewal by the date shown, or earlier in the window the CA suggests (ARI)`)
    for (const name of acme.hosts) {
      const c = await storage.certificate(name).catch(() => null)
      const renews = c === null ? null : new Date(renewBy(c, acme))
      lines.push(`  ${name.padEnd(28)} ${c === null ? 'not obtained yet' : `${c.issuer}, expires ${c.notAfter.toISOString()}, renews by ${(renews as Date).toISOString()}`}`)
    }
    if (acme.unmanaged.length > 0) lines.push(`  not managed (wildcards and prefix keys need DNS-01; serve them with tls.certificates): ${acme.unmanaged.join(', ')}`)
    await storage.close()
  }
  process.stdout.write(`${lines.join('\n')}\n`)
  await proxy.close({ drainTimeout: 0 })
}

/** The longest password line read from a pipe (a guard against piping a file in by mistake). */
const MAX_PASSWORD_LINE = 64 * 1024

/** Reads standard input up to the first newline (or its end): the line without the newline (and a CR before it). */
async function readFirstLine (input: NodeJS.ReadableStream): Promise<string> {
  let text = ''
  input.setEncoding('utf8')
  for await (const chunk of input) {
    text += chunk as string
    const nl = text.indexOf('\n')
    if (nl !== -1) {
      text = text.slice(0, nl)
      break
    }
    if (text.length > MAX_PASSWORD_LINE) break
  }
  if (text.length > MAX_PASSWORD_LINE) throw new RangeError('the first line of standard input is longer than 64 KiB')
  return text.replace(/\r$/, '')
}

/**
 * Asks for one line per prompt on a terminal, without echo (raw mode; prompts on stderr, so stdout holds only the
 * hash). Enter ends a line, Backspace deletes, Ctrl-U clears, Ctrl-D on an empty line ends it, Ctrl-C exits 130.
 * Typed-ahead or pasted text carries over from one prompt to the next.
 */
function promptHidden (prompts: string[]): Promise<string[]> {
  const stdin = process.stdin
  return new Promise((resolve) => {
    const lines: string[] = []
    let text = ''
    const done = (): void => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
    }
    const endLine = (): boolean => {
      process.stderr.write('\n')
      lines.push(text)
      text = ''
      if (lines.length === prompts.length) {
        done()
        resolve(lines)
        return true
      }
      process.stderr.write(prompts[lines.length])
      return false
    }
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          if (endLine()) return
        } else if (ch === '\u0003') {
          done()
          process.stderr.write('\n')
          process.exit(130)
        } else if (ch === '\u0004') {
          if (text === '' && endLine()) return
        } else if (ch === '\u007f' || ch === '\b') {
          text = [...text].slice(0, -1).join('')
        } else if (ch === '\u0015') {
          text = ''
        } else if (ch >= ' ') {
          text += ch
        }
      }
    }
    // Raw mode first, then the prompt: whatever is typed once the prompt shows is never echoed.
    stdin.setEncoding('utf8')
    stdin.setRawMode(true)
    process.stderr.write(prompts[0])
    stdin.resume()
    stdin.on('data', onData)
  })
}

function usage (message: string): never {
  process.stderr.write(`portico: ${message}\n`)
  process.exit(2)
}

async function hashPasswordCommand (algorithm: 'scrypt' | 'bcrypt'): Promise<void> {
  // Loaded on demand, like the certificate generator.
  const { hashPassword } = await import('../rules/basic-auth.js')
  let password: string
  if (process.stdin.isTTY) {
    const [first, again] = await promptHidden(['Password: ', 'Again: '])
    if (first !== '' && first !== again) usage('the passwords do not match')
    password = first
  } else {
    try {
      password = await readFirstLine(process.stdin)
    } catch (err) {
      usage((err as Error).message)
    }
  }
  if (password === '') usage('empty password (give it as the first line of standard input, or type it at the prompt)')
  let hash
  try {
    hash = await hashPassword(password, algorithm)
  } catch (err) {
    if (err instanceof RangeError) usage(err.message)
    throw err
  }
  process.stdout.write(`${hash}\n`)
}

/** Runs the CLI with `argv` (without node and script). */
export async function main (argv: string[]): Promise<void> {
  const program = new Command()
  program
    .name('portico')
    .description('A reverse proxy: host and path routing, load balancing, in-process upstreams.')
    .version(PACKAGE.version, '-v, --version')
    .option('-c, --config <file>', 'config file (YAML, JSON, or .mjs exporting the config); default ./portico.yaml')
    .option('-p, --port <n>', 'port for the first listener (overrides the config)', parsePort)
    .option('-H, --host <addr>', 'address for the first listener (overrides the config)')
    .option('-l, --log-level <level>', 'trace|debug|info|warn|error|silent')
    .option('-r, --route <spec>', 'quick mode: HOST[/PATH]=URL[,URL...] (repeatable; no config file)', collect)
    .option('-w, --workers <n>', 'worker processes sharing the listeners, or "auto" (one per core)', parseWorkers)
    .exitOverride()
    .action(async () => { await serve(program.opts<GlobalOptions>()) })
  program
    .command('check')
    .description('validate the config and print the compiled route table')
    .option('-c, --config <file>', 'config file; default ./portico.yaml')
    .option('-r, --route <spec>', 'quick-mode route (repeatable)', collect)
    .exitOverride()
    .action(async (sub: GlobalOptions) => { await check({ ...program.opts<GlobalOptions>(), ...sub }) })
  program
    .command('cert')
    .description('write a self-signed certificate for local development: <first-host>.pem and <first-host>-key.pem')
    .argument('<hosts...>', 'host names and IP addresses it is valid for (the first names the files)')
    .requiredOption('--dev', 'a self-signed development certificate (the only kind this version writes)')
    .option('-o, --out <dir>', 'directory to write to', '.')
    .option('--days <n>', 'validity in days', parseDays, 30)
    .exitOverride()
    .action(async (hosts: string[], sub: { out: string, days: number }) => {
      // Loaded on demand: the certificate generator is not needed (nor kept in memory) by a running proxy.
      const { describeDevCertificate, writeDevCertificate } = await import('./dev-cert.js')
      let files
      try {
        files = await writeDevCertificate({ hosts, outDir: sub.out, days: sub.days })
      } catch (err) {
        process.stderr.write(`portico: ${(err as Error).message}\n`)
        process.exit(err instanceof RangeError ? 2 : 1)
      }
      process.stdout.write(describeDevCertificate(files))
    })
  program
    .command('schema')
    .description('print the JSON Schema of the config file (portico.schema.json), for editors and CI checks')
    .action(() => { process.stdout.write(configJsonSchemaText()) })
  program
    .command('restart')
    .description('replace the workers one at a time (a rolling restart) through the admin API of a running portico')
    .option('-c, --config <file>', 'the config of the running portico (for its admin address and token); default ./portico.yaml')
    .action(async (sub: GlobalOptions) => { await restartCommand({ ...program.opts<GlobalOptions>(), ...sub }) })
  program
    .command('hash-password')
    .description('print a password hash for a basic-auth user ("name:hash"); the password is the first line of standard input, or typed twice (unechoed) at a terminal')
    .addOption(new Option('-a, --algorithm <name>', 'hash algorithm').choices(['scrypt', 'bcrypt']).default('scrypt'))
    .exitOverride()
    .action(async (sub: { algorithm: 'scrypt' | 'bcrypt' }) => { await hashPasswordCommand(sub.algorithm) })
  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exit(err.exitCode === 0 ? 0 : 2)
    }
    fail(err)
  }
}
