/**
 * TLS to upstreams, against real TLS origins on 127.0.0.1: verification on by default, a private CA, the SNI and
 * verification name, client certificates (plain and encrypted keys), insecureSkipVerify, and HTTP/2 by ALPN.
 * Every certificate is generated at test time into a temp dir (never committed), so none can expire in the repo.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import https from 'node:https'
import http2 from 'node:http2'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { generate } from 'selfsigned'
import { ConfigError, type PorticoConfig } from '../../src/index.js'
import { send, startProxy, type RunningProxy } from '../helpers/servers.js'

const MiB = 1024 * 1024
const PASSPHRASE_ENV = 'PORTICO_TEST_UPSTREAM_KEY_PASSPHRASE'

interface Pem { cert: string, key: string }

/** PEM material for every test, and the temp dir holding it as files (the proxy's baseDir). */
interface Material {
  dir: string
  ca: Pem
  /** Leaf for 127.0.0.1 and localhost, signed by `ca`. */
  server: Pem
  /** Leaf for "backend.test" only, signed by `ca`. */
  backend: Pem
  /** A second CA that only signs the proxy's client certificate. */
  clientCa: Pem
  client: Pem
}

let material: Material

async function issue (cn: string, options: { ca?: Pem, isCa?: boolean, sans?: { type: 2 | 7, value?: string, ip?: string }[], passphrase?: string } = {}): Promise<Pem> {
  const extensions = options.isCa === true
    ? [{ name: 'basicConstraints' as const, cA: true, critical: true }, { name: 'keyUsage' as const, keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }]
    : [
        { name: 'basicConstraints' as const, cA: false },
        { name: 'keyUsage' as const, digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage' as const, serverAuth: true, clientAuth: true },
        ...(options.sans === undefined ? [] : [{ name: 'subjectAltName' as const, altNames: options.sans }])
      ]
  const pems = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions,
    ...(options.ca === undefined ? {} : { ca: { cert: options.ca.cert, key: options.ca.key } }),
    ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase })
  })
  return { cert: pems.cert, key: pems.private }
}

before(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-upstream-tls-'))
  const ca = await issue('Portico Test CA', { isCa: true })
  const clientCa = await issue('Portico Test Client CA', { isCa: true })
  const server = await issue('127.0.0.1', { ca, sans: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] })
  const backend = await issue('backend.test', { ca, sans: [{ type: 2, value: 'backend.test' }] })
  const client = await issue('portico-client', { ca: clientCa })
  const encrypted = await issue('portico-client-encrypted', { ca: clientCa, passphrase: 'correct horse' })
  writeFileSync(path.join(dir, 'ca.pem'), ca.cert)
  writeFileSync(path.join(dir, 'other-ca.pem'), clientCa.cert)
  writeFileSync(path.join(dir, 'client.pem'), client.cert)
  writeFileSync(path.join(dir, 'client-key.pem'), client.key, { mode: 0o600 })
  writeFileSync(path.join(dir, 'client-encrypted.pem'), encrypted.cert)
  writeFileSync(path.join(dir, 'client-encrypted-key.pem'), encrypted.key, { mode: 0o600 })
  material = { dir, ca, server, backend, clientCa, client }
})

after(() => {
  if (material !== undefined) rmSync(material.dir, { recursive: true, force: true })
})

/** What a TLS origin saw of one request. */
interface Seen {
  httpVersion: string
  /** The SNI name the proxy sent (false: none). */
  servername: string | false
  /** The client certificate's subject CN, if one was presented. */
  clientCN: string | undefined
  host: string | undefined
}

interface TlsOrigin {
  url: string
  port: number
  seen: Seen[]
  close (): Promise<void>
}

type AnyRequest = IncomingMessage | http2.Http2ServerRequest
type AnyResponse = ServerResponse | http2.Http2ServerResponse

function record (seen: Seen[], req: AnyRequest): void {
  const socket = req.socket as TLSSocket
  const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined
  seen.push({
    httpVersion: req.httpVersion,
    servername: socket.servername ?? false,
    clientCN: peer?.subject?.CN as string | undefined,
    host: (req.headers[':authority'] ?? req.headers.host) as string | undefined
  })
}

/** An https origin on 127.0.0.1 (HTTP/1.1 only) serving `pem`; `options` adds mTLS settings. */
async function startHttpsOrigin (pem: Pem, options: https.ServerOptions = {}, handler: RequestListener = (_req, res) => res.end('secure')): Promise<TlsOrigin> {
  const seen: Seen[] = []
  const server = https.createServer({ cert: pem.cert, key: pem.key, ...options }, (req, res) => {
    record(seen, req)
    handler(req, res)
  })
  server.on('tlsClientError', () => { /* rejected handshakes are what some tests are about */ })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}

/** An HTTP/2 origin that also accepts HTTP/1.1 (ALPN), as most real ones do. */
async function startHttp2Origin (pem: Pem, handler: (req: AnyRequest, res: AnyResponse) => void): Promise<TlsOrigin> {
  const seen: Seen[] = []
  const sockets = new Set<Socket>()
  const server = http2.createSecureServer({ cert: pem.cert, key: pem.key, allowHTTP1: true }, (req, res) => {
    record(seen, req)
    handler(req, res)
  })
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    seen,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  }
}

type TlsOptions = NonNullable<Extract<NonNullable<PorticoConfig['routes']>[number]['upstream'], { nodes?: unknown }>['tls']>

/** A proxy with one catch-all route to `nodes`, files relative to the temp dir. */
function proxyTo (nodes: string[], tls?: TlsOptions, extra: { http2?: boolean } = {}): Promise<RunningProxy> {
  return startProxy({
    routes: [{ host: '*', upstream: { nodes, ...(tls === undefined ? {} : { tls }), ...extra } }]
  }, { baseDir: material.dir })
}

/** Expects `start` to fail with a ConfigError and returns its issue paths; a proxy that did start is closed. */
async function configErrorPaths (start: Promise<RunningProxy>): Promise<(string | number)[][]> {
  let err: unknown
  try {
    const proxy = await start
    await proxy.close()
  } catch (e) {
    err = e
  }
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
  assert.equal(err.code, 'PORTICO_ERR_CONFIG_INVALID')
  return err.issues.map((i) => i.path)
}

function errorDetail (headers: Record<string, string | string[] | undefined>): string | undefined {
  const ps = headers['proxy-status']
  return typeof ps === 'string' ? /details="([^"]*)"/.exec(ps)?.[1] : undefined
}

test('an https node whose certificate is not trusted gets 502 PORTICO_ERR_UPSTREAM_TLS (verification is on by default)', async (t) => {
  const origin = await startHttpsOrigin(material.server)
  const proxy = await proxyTo([origin.url])
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 502)
  assert.equal(errorDetail(res.headers), 'PORTICO_ERR_UPSTREAM_TLS')
  assert.equal(origin.seen.length, 0)
})

test('a self-signed https node is not trusted either (502 PORTICO_ERR_UPSTREAM_TLS)', async (t) => {
  const origin = await startHttpsOrigin(material.ca)
  const proxy = await proxyTo([origin.url])
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 502)
  assert.equal(errorDetail(res.headers), 'PORTICO_ERR_UPSTREAM_TLS')
})

test('the same node trusted through tls.ca (a file relative to baseDir) answers 200', async (t) => {
  const origin = await startHttpsOrigin(material.server)
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 200)
  assert.equal(res.body.toString(), 'secure')
  assert.equal(origin.seen.length, 1)
  // An IP node gets no SNI (RFC 6066 §3: literal addresses are not permitted in server_name).
  assert.equal(origin.seen[0].servername, false)
})

test('tls.ca as a list trusts each CA in it', async (t) => {
  const origin = await startHttpsOrigin(material.server)
  const proxy = await proxyTo([origin.url], { ca: ['other-ca.pem', 'ca.pem'] })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  assert.equal((await send(`${proxy.url}/a`)).status, 200)
})

test('tls.ca replaces the default bundle: trusting another CA only still fails with 502', async (t) => {
  const origin = await startHttpsOrigin(material.server)
  const proxy = await proxyTo([origin.url], { ca: 'other-ca.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 502)
  assert.equal(errorDetail(res.headers), 'PORTICO_ERR_UPSTREAM_TLS')
})

test('serverName sets SNI and the verified name: a node certified for "backend.test" only answers 200', async (t) => {
  const origin = await startHttpsOrigin(material.backend)
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem', serverName: 'backend.test' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 200)
  assert.equal(origin.seen[0].servername, 'backend.test')
})

test('without serverName the same node fails verification (502 PORTICO_ERR_UPSTREAM_TLS)', async (t) => {
  const origin = await startHttpsOrigin(material.backend)
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 502)
  assert.equal(errorDetail(res.headers), 'PORTICO_ERR_UPSTREAM_TLS')
  assert.equal(origin.seen.length, 0)
})

test('the client\'s Host header never becomes the SNI or verified name: serverName wins (preserveHost on)', async (t) => {
  const origin = await startHttpsOrigin(material.backend)
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem', serverName: 'backend.test' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  for (const host of ['www.example.com', 'api.example.com']) {
    const res = await send(`${proxy.url}/a`, { headers: { host } })
    assert.equal(res.status, 200)
  }
  assert.deepEqual(origin.seen.map((s) => [s.servername, s.host]), [['backend.test', 'www.example.com'], ['backend.test', 'api.example.com']])
})

test('the client\'s Host header never becomes the SNI: a node named by host name is verified against that name', async (t) => {
  const origin = await startHttpsOrigin(material.server)
  const proxy = await proxyTo([`https://localhost:${origin.port}`], { ca: 'ca.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`, { headers: { host: 'www.example.com' } })
  assert.equal(res.status, 200)
  assert.equal(origin.seen[0].servername, 'localhost')
  assert.equal(origin.seen[0].host, 'www.example.com')
})

test('the client\'s Host header does not make an IP node fail verification either', async (t) => {
  const origin = await startHttpsOrigin(material.server)
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`, { headers: { host: 'www.example.com' } })
  assert.equal(res.status, 200)
  assert.equal(origin.seen[0].servername, false)
})

test('mTLS: with tls.cert and tls.key the node sees the client certificate and answers 200', async (t) => {
  const origin = await startHttpsOrigin(material.server, { requestCert: true, rejectUnauthorized: true, ca: material.clientCa.cert })
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem', cert: 'client.pem', key: 'client-key.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 200)
  assert.equal(origin.seen[0].clientCN, 'portico-client')
})

test('mTLS: without a client certificate the node refuses the handshake and the client gets 502', async (t) => {
  const origin = await startHttpsOrigin(material.server, { requestCert: true, rejectUnauthorized: true, ca: material.clientCa.cert })
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 502)
  // With TLS 1.3 the client finishes its side of the handshake before the node checks the certificate, so the
  // refusal arrives as an alert (TLS) or, when the node closes first, as a closed connection (reset).
  assert.ok(['PORTICO_ERR_UPSTREAM_TLS', 'PORTICO_ERR_UPSTREAM_RESET'].includes(errorDetail(res.headers) ?? ''), errorDetail(res.headers))
  assert.equal(origin.seen.length, 0)
})

test('mTLS with an encrypted client key: the passphrase comes from passphraseEnv', async (t) => {
  process.env[PASSPHRASE_ENV] = 'correct horse'
  t.after(() => { delete process.env[PASSPHRASE_ENV] })
  const origin = await startHttpsOrigin(material.server, { requestCert: true, rejectUnauthorized: true, ca: material.clientCa.cert })
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem', cert: 'client-encrypted.pem', key: 'client-encrypted-key.pem', passphraseEnv: PASSPHRASE_ENV })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 200)
  assert.equal(origin.seen[0].clientCN, 'portico-client-encrypted')
})

test('passphraseEnv naming an unset variable is a ConfigError at the key path', async () => {
  delete process.env[PASSPHRASE_ENV]
  const paths = await configErrorPaths(proxyTo(['https://127.0.0.1:1'], { cert: 'client-encrypted.pem', key: 'client-encrypted-key.pem', passphraseEnv: PASSPHRASE_ENV }))
  assert.deepEqual(paths, [['routes', 0, 'upstream', 'tls', 'passphraseEnv']])
})

test('a wrong passphrase is a ConfigError at load time, not a 502 on every request', async (t) => {
  process.env[PASSPHRASE_ENV] = 'wrong'
  t.after(() => { delete process.env[PASSPHRASE_ENV] })
  const paths = await configErrorPaths(proxyTo(['https://127.0.0.1:1'], { cert: 'client-encrypted.pem', key: 'client-encrypted-key.pem', passphraseEnv: PASSPHRASE_ENV }))
  assert.deepEqual(paths, [['routes', 0, 'upstream', 'tls', 'key']])
})

test('a key that does not match the certificate is a ConfigError', async () => {
  const paths = await configErrorPaths(proxyTo(['https://127.0.0.1:1'], { cert: 'client-encrypted.pem', key: 'client-key.pem' }))
  assert.deepEqual(paths, [['routes', 0, 'upstream', 'tls', 'key']])
})

test('tls.cert without tls.key is a ConfigError', async () => {
  assert.deepEqual(await configErrorPaths(proxyTo(['https://127.0.0.1:1'], { cert: 'client.pem' })), [['routes', 0, 'upstream', 'tls']])
})

test('a CA file that cannot be read is a ConfigError at tls.ca', async () => {
  assert.deepEqual(await configErrorPaths(proxyTo(['https://127.0.0.1:1'], { ca: 'missing.pem' })), [['routes', 0, 'upstream', 'tls', 'ca']])
})

test('insecureSkipVerify: an untrusted node answers 200 and a warn line says verification is off', async (t) => {
  const origin = await startHttpsOrigin(material.backend)
  const proxy = await proxyTo([origin.url], { insecureSkipVerify: true })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/a`)
  assert.equal(res.status, 200)
  const warned = proxy.logs.filter((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.startsWith('insecureSkipVerify:'))
  assert.equal(warned.length, 1)
  assert.equal(warned[0].upstream, origin.url)
})

test('no insecureSkipVerify warning for verified or cleartext nodes', async (t) => {
  const origin = await startHttpsOrigin(material.server)
  const proxy = await proxyTo([origin.url, 'http://127.0.0.1:1'], { ca: 'ca.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  assert.equal(proxy.logs.filter((l) => l.level === 40).length, 0)
})

function echoOrigin (): Promise<TlsOrigin> {
  return startHttp2Origin(material.server, (req, res) => {
    if (req.method !== 'POST') {
      res.end(`v${req.httpVersion}`)
      return
    }
    const h = createHash('sha256')
    let n = 0
    req.on('data', (c: Buffer) => { h.update(c); n += c.length })
    req.on('end', () => {
      const body = Buffer.alloc(n)
      // The answer is derived from the upload: the SHA-256 of it repeated, so both directions are checked.
      const digest = h.digest()
      for (let i = 0; i < n; i += digest.length) digest.copy(body, i)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upload-sha256': digest.toString('hex'), 'x-upload-bytes': String(n) })
      res.end(body)
    })
  })
}

test('http2: true speaks HTTP/2 to a node that offers h2 by ALPN', async (t) => {
  const origin = await echoOrigin()
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem' }, { http2: true })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/v`)
  assert.equal(res.status, 200)
  assert.equal(origin.seen[0].httpVersion, '2.0')
  assert.equal(res.body.toString(), 'v2.0')
})

test('without http2 the same node is spoken to over HTTP/1.1', async (t) => {
  const origin = await echoOrigin()
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem' })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const res = await send(`${proxy.url}/v`)
  assert.equal(res.status, 200)
  assert.equal(origin.seen[0].httpVersion, '1.1')
})

test('10 MiB up and 10 MiB down over an HTTP/2 upstream arrive intact (SHA-256)', async (t) => {
  const origin = await echoOrigin()
  const proxy = await proxyTo([origin.url], { ca: 'ca.pem' }, { http2: true })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const upload = randomBytes(10 * MiB)
  const uploadDigest = createHash('sha256').update(upload).digest()
  const res = await send(`${proxy.url}/upload`, { method: 'POST', body: upload, headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(res.status, 200)
  assert.equal(origin.seen[0].httpVersion, '2.0')
  assert.equal(res.headers['x-upload-bytes'], String(10 * MiB))
  assert.equal(res.headers['x-upload-sha256'], uploadDigest.toString('hex'))
  const expected = Buffer.alloc(10 * MiB)
  for (let i = 0; i < expected.length; i += uploadDigest.length) uploadDigest.copy(expected, i)
  assert.equal(res.body.length, 10 * MiB)
  assert.equal(createHash('sha256').update(res.body).digest('hex'), createHash('sha256').update(expected).digest('hex'))
})
