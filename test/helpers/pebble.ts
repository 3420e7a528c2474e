/**
 * A real ACME CA for the tests: Debian's `pebble` (Let's Encrypt's test CA) with `pebble-challtestsrv` as its DNS
 * server (every name resolves to 127.0.0.1), both on free loopback ports, Pebble's own HTTPS on a certificate made
 * for the run. Pebble validates HTTP-01 on `httpPort` and TLS-ALPN-01 on `tlsPort`: the ports of the Portico
 * listeners under test. Without the binaries: on CI (`CI=true`) `startPebble` throws, elsewhere it returns null and
 * the caller skips loudly.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { generate } from 'selfsigned'
import { closedPort } from './servers.js'
import { until } from './poll.js'

export interface Pebble {
  /** The ACME directory URL. */
  directory: string
  /** PEM file of the certificate Pebble's HTTPS listeners serve (trust it for the directory). */
  caFile: string
  /** Pebble's issuing root (PEM), from its management port: what a client of the issued certificates trusts. */
  root (): Promise<string>
  /**
   * A directory that is Pebble's plus ACME Renewal Information (RFC 9773, which Pebble 2.4 lacks): `renewalInfo`
   * points at a server of the test's that answers each certificate's window with `window(certId)` (null: 404).
   * Every other resource is Pebble's own. `requests` lists the identifiers asked about.
   */
  withRenewalInfo (window: (certId: string) => RenewalWindow | null): Promise<{ directory: string, requests: string[] }>
  /** SIGSTOP / SIGCONT the CA: requests to it wait (a slow CA), nothing fails. */
  pause (): void
  resume (): void
  stop (): Promise<void>
}

/** A renewal window as a CA's renewalInfo resource gives it. */
export interface RenewalWindow {
  start: Date
  end: Date
  /** Seconds, sent as Retry-After. */
  retryAfter?: number
  explanationURL?: string
}

export const NO_PEBBLE = 'pebble not installed: ACME tests skipped (apt-get install pebble)'

function installed (bin: string): boolean {
  try {
    accessSync(`/usr/bin/${bin}`, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function fetchText (url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${String(res.statusCode)}`)))
    }).on('error', reject)
  })
}

/**
 * Starts Pebble validating HTTP-01 on `httpPort` and TLS-ALPN-01 on `tlsPort` (by default a port nothing listens
 * on), or returns null (not on CI) when it is not installed.
 */
export async function startPebble (httpPort: number, tlsPort?: number): Promise<Pebble | null> {
  if (!installed('pebble') || !installed('pebble-challtestsrv')) {
    if (process.env.CI === 'true') throw new Error(NO_PEBBLE)
    return null
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-pebble-'))
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }]
  })
  const caFile = path.join(dir, 'pebble-cert.pem')
  writeFileSync(caFile, pems.cert)
  writeFileSync(path.join(dir, 'pebble-key.pem'), pems.private)
  const [dns, acme, management, challManagement] = await Promise.all([closedPort(), closedPort(), closedPort(), closedPort()])
  writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acme}`,
      managementListenAddress: `127.0.0.1:${management}`,
      certificate: caFile,
      privateKey: path.join(dir, 'pebble-key.pem'),
      httpPort,
      tlsPort: tlsPort ?? await closedPort(),
      ocspResponderURL: '',
      externalAccountBindingRequired: false
    }
  }))
  const children: ChildProcess[] = [
    spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dns}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challManagement}`], { stdio: 'ignore' }),
    spawn('pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dns}`], {
      stdio: 'ignore',
      // No random validation sleeps; no rejected nonces (the client would retry them, only slower).
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' }
    })
  ]
  const directory = `https://127.0.0.1:${acme}/dir`
  const up = await until(async () => { try { await fetchText(directory, pems.cert); return true } catch { return false } }, { ms: 10_000, every: 100 })
  const stop = async (): Promise<void> => {
    for (const c of children) c.kill()
    await Promise.all(children.map((c) => c.exitCode !== null ? null : new Promise((resolve) => c.once('exit', resolve))))
    rmSync(dir, { recursive: true, force: true })
  }
  if (!up) {
    await stop()
    throw new Error('pebble did not start within 10 s')
  }
  const servers: https.Server[] = []
  const withRenewalInfo = async (window: (certId: string) => RenewalWindow | null): Promise<{ directory: string, requests: string[] }> => {
    const requests: string[] = []
    const server = https.createServer({ cert: pems.cert, key: pems.private }, (req, res) => {
      const url = req.url ?? '/'
      if (url === '/dir') {
        fetchText(directory, pems.cert).then((text) => {
          const dir = { ...JSON.parse(text) as object, renewalInfo: `https://127.0.0.1:${(server.address() as AddressInfo).port}/renewal-info` }
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(dir))
        }, () => res.writeHead(502).end())
        return
      }
      const id = url.startsWith('/renewal-info/') ? url.slice('/renewal-info/'.length) : null
      const w = id === null ? null : window(id)
      if (id !== null) requests.push(id)
      if (w === null) {
        res.writeHead(404, { 'content-type': 'application/problem+json' }).end('{"type":"urn:ietf:params:acme:error:malformed"}')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json', ...(w.retryAfter === undefined ? {} : { 'retry-after': String(w.retryAfter) }) })
      res.end(JSON.stringify({ suggestedWindow: { start: w.start.toISOString(), end: w.end.toISOString() }, ...(w.explanationURL === undefined ? {} : { explanationURL: w.explanationURL }) }))
    })
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return { directory: `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`, requests }
  }
  return {
    directory,
    caFile,
    withRenewalInfo,
    root: () => fetchText(`https://127.0.0.1:${management}/roots/0`, pems.cert),
    pause: () => { children[1].kill('SIGSTOP') },
    resume: () => { children[1].kill('SIGCONT') },
    stop: async () => {
      for (const s of servers) s.close()
      children[1].kill('SIGCONT')
      await stop()
    }
  }
}
