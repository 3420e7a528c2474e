/**
 * Test helpers: real origins and proxies on 127.0.0.1 ephemeral ports, raw-socket and node:http clients, the
 * CLI as a child process. Nothing here mocks node:http, undici or sockets.
 */
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { createProxy, type PorticoConfig, type Proxy } from '../../src/index.js'

/** Repository root (dist/test/helpers → ../../..). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
export const FIXTURES = path.join(ROOT, 'test/fixtures')

export interface RecordedRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  httpVersion: string
}

export interface Origin {
  url: string
  port: number
  server: http.Server
  requests: RecordedRequest[]
  close (): Promise<void>
}

/** Starts an origin server; every request is recorded before the handler runs. */
export async function startOrigin (handler: RequestListener = (_req, res) => res.end('ok')): Promise<Origin> {
  const requests: RecordedRequest[] = []
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, httpVersion: req.httpVersion })
    handler(req, res)
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}

/** A port that nothing listens on (bound, then released). */
export async function closedPort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

export interface LogCapture {
  lines: Record<string, unknown>[]
  logger: pino.Logger
}

/** A pino logger that keeps every line as parsed JSON. */
export function captureLogs (level = 'info'): LogCapture {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line))
      cb()
    }
  })
  return { lines, logger: pino({ level }, stream) }
}

export interface RunningProxy {
  url: string
  port: number
  proxy: Proxy
  logs: Record<string, unknown>[]
  close (): Promise<void>
}

/** Starts a proxy from an options object on 127.0.0.1:0 (the config's listen is replaced). */
export async function startProxy (config: PorticoConfig, options: { baseDir?: string } = {}): Promise<RunningProxy> {
  const capture = captureLogs()
  const proxy = createProxy({ ...config, listen: [{ host: '127.0.0.1', port: 0 }] }, { logger: capture.logger, baseDir: options.baseDir })
  const [addr] = await proxy.listen()
  return { url: addr.url, port: addr.port, proxy, logs: capture.lines, close: () => proxy.close({ drainTimeout: 1000 }) }
}

export interface Reply {
  status: number
  statusMessage: string
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  trailers: NodeJS.Dict<string>
  body: Buffer
}

/** One request with node:http (no keep-alive pool), body collected. */
export function send (url: string, options: { method?: string, headers?: http.OutgoingHttpHeaders | string[], body?: Buffer | string, path?: string } = {}): Promise<Reply> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname,
      port: u.port,
      method: options.method ?? 'GET',
      path: options.path ?? `${u.pathname}${u.search}`,
      headers: options.headers,
      agent: false
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        statusMessage: res.statusMessage ?? '',
        headers: res.headers,
        rawHeaders: res.rawHeaders,
        trailers: res.trailers,
        body: Buffer.concat(chunks)
      }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Writes raw bytes on a fresh connection and resolves with everything read until the server closes. */
export function rawExchange (port: number, data: string | Buffer, options: { endAfterMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    // Keep-alive responses leave the socket open: stop after a bound.
    const timer = setTimeout(() => socket.end(), options.endAfterMs ?? 2000)
    socket.on('data', (c) => chunks.push(c))
    socket.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') resolve(Buffer.concat(chunks).toString('latin1'))
      else reject(err)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('latin1'))
    })
    socket.write(data)
  })
}

export interface Cli {
  child: ChildProcess
  url: string
  stdout: string[]
  stderr: string[]
  /** Resolves with the exit code. */
  exited: Promise<number | null>
}

/** Spawns `portico` and waits for its "portico started" line (or its exit). */
export async function startCli (args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Cli> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/portico.js'), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const stdout: string[] = []
  const stderr: string[] = []
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  let buffered = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      buffered += c.toString()
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        stdout.push(line)
        try {
          const rec = JSON.parse(line) as { msg?: string, listen?: string[] }
          if (rec.msg === 'portico started' && rec.listen) resolve(rec.listen[0])
        } catch { /* not JSON */ }
      }
    })
    child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString()))
    exited.then((code) => reject(new Error(`portico exited with ${code}: ${stderr.join('')}`)))
  })
  return { child, url, stdout, stderr, exited }
}

/**
 * Runs `portico` to completion, collecting output. With `input`, standard input is a pipe that gets `input` and is
 * then closed; without, standard input is not connected (/dev/null).
 */
export function runCli (args: string[], options: { cwd?: string, input?: string | Buffer } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/portico.js'), ...args], { cwd: options.cwd ?? ROOT, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    if (options.input !== undefined) {
      // The CLI may exit before reading it all (e.g. after the first line): a broken pipe is not a test failure.
      child.stdin!.on('error', () => {})
      child.stdin!.end(options.input)
    }
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Writes `size` bytes of `block` repeated to `res`, honouring backpressure, then ends it. */
export function writeRepeated (res: ServerResponse, block: Buffer, size: number): void {
  let left = size
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, block.length)
      left -= n
      if (!res.write(n === block.length ? block : block.subarray(0, n))) { res.once('drain', pump); return }
    }
    res.end()
  }
  pump()
}
