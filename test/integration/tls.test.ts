import { test } from 'node:test'
import assert from 'node:assert/strict'
import tls from 'node:tls'
import https from 'node:https'
import http2 from 'node:http2'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'
import { createProxy, type PorticoConfig } from '../../src/index.js'
import { captureLogs, send, startOrigin } from '../helpers/servers.js'
import { testCert, type TestCert } from '../helpers/tls.js'
import { sleep, until } from '../helpers/poll.js'

interface Certs { site: TestCert, wild: TestCert, other: TestCert, dir: string }

async function certs (): Promise<Certs> {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-tls-'))
  return { dir, site: await testCert(['example.test'], dir), wild: await testCert(['*.wild.test'], dir), other: await testCert(['default.test'], dir) }
}

async function start (config: PorticoConfig): Promise<{ urls: string[], ports: number[], close: () => Promise<void>, logs: Record<string, unknown>[] }> {
  const logs = captureLogs()
  const proxy = createProxy(config, { logger: logs.logger })
  const addrs = await proxy.listen()
  return { urls: addrs.map((a) => a.url), ports: addrs.map((a) => a.port), close: () => proxy.close({ drainTimeout: 500 }), logs: logs.lines }
}

/** The certificate a TLS handshake with `servername` gets (undefined: no SNI). */
function peerCert (port: number, servername?: string, extra: tls.ConnectionOptions = {}): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername, rejectUnauthorized: false, ...extra }, () => {
      const raw = socket.getPeerX509Certificate()
      socket.end()
      if (raw === undefined) reject(new Error('no certificate'))
      else resolve(raw)
    })
    socket.on('error', reject)
  })
}

test('SNI picks the certificate per host (exact, wildcard), the default serves clients without SNI', async (t) => {
  const c = await certs()
  const origin = await startOrigin()
  const proxy = await start({
    listen: [{ host: '127.0.0.1', port: 0, tls: true }],
    tls: {
      certificates: [
        { hosts: ['example.test'], cert: c.site.certFile, key: c.site.keyFile },
        { hosts: ['*.wild.test'], cert: c.wild.certFile, key: c.wild.keyFile },
        { hosts: ['default.test'], cert: c.other.certFile, key: c.other.keyFile, default: true }
      ]
    },
    upstreams: { '*': [origin.url] }
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const port = proxy.ports[0]
  assert.match((await peerCert(port, 'example.test')).subject, /CN=example\.test/)
  assert.match((await peerCert(port, 'a.wild.test')).subject, /CN=\*\.wild\.test/)
  assert.match((await peerCert(port, 'a.b.wild.test')).subject, /CN=default\.test/, 'a wildcard covers one label')
  assert.match((await peerCert(port, 'unknown.test')).subject, /CN=default\.test/)
  assert.match((await peerCert(port)).subject, /CN=default\.test/)
  await assert.rejects(peerCert(port, 'example.test', { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), 'TLS below 1.2 is refused')
})

test('HTTPS with HTTP/1.1 and HTTP/2 on one port (ALPN): X-Forwarded-Proto https, HSTS, TLS facts in the log', async (t) => {
  const c = await certs()
  const origin = await startOrigin((req, res) => res.end(`${req.headers['x-forwarded-proto']} ${req.headers.host}`))
  const proxy = await start({
    listen: [{ host: '127.0.0.1', port: 0, tls: true }],
    tls: { certificates: [{ hosts: ['example.test'], cert: c.site.certFile, key: c.site.keyFile }] },
    routes: [{ host: 'example.test', upstream: [origin.url], hsts: { maxAge: '1d', includeSubDomains: true } }]
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const port = proxy.ports[0]

  const h1 = await new Promise<{ status: number, hsts: string | undefined, body: string, alpn: string | false | null }>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, servername: 'example.test', headers: { host: 'example.test' }, ca: c.site.cert, agent: false, path: '/', ALPNProtocols: ['http/1.1'] } as https.RequestOptions, (res) => {
      let body = ''
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, hsts: res.headers['strict-transport-security'], body, alpn: (res.socket as tls.TLSSocket).alpnProtocol }))
    })
    req.on('error', reject)
    req.end()
  })
  assert.equal(h1.status, 200)
  assert.equal(h1.body, 'https example.test')
  assert.equal(h1.hsts, 'max-age=86400; includeSubDomains')
  assert.equal(h1.alpn, 'http/1.1')

  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: c.site.cert, servername: 'example.test' })
  t.after(() => session.close())
  const h2 = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const stream = session.request({ ':path': '/h2', ':authority': `example.test:${port}` })
    let status = 0
    let body = ''
    stream.on('response', (h) => { status = Number(h[':status']) })
    stream.on('data', (d) => { body += d })
    stream.on('end', () => resolve({ status, body }))
    stream.on('error', reject)
    stream.end()
  })
  assert.equal(h2.status, 200)
  assert.equal(h2.body, `https example.test:${port}`)
  const line = proxy.logs.find((l) => l.path === '/')!
  assert.match(String(line.tlsProtocol), /^TLSv1\.[23]$/)
  assert.equal(typeof line.tlsCipher, 'string')
  assert.equal(line.sni, 'example.test')
})

test('cleartext h2c listener with prior knowledge', async (t) => {
  const origin = await startOrigin((req, res) => res.end(`via ${req.headers.via}`))
  const proxy = await start({ listen: [{ host: '127.0.0.1', port: 0, http2: true }], upstreams: { '*': [origin.url] } })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const session = http2.connect(proxy.urls[0])
  t.after(() => session.close())
  const body = await new Promise<string>((resolve, reject) => {
    const stream = session.request({ ':path': '/' })
    let b = ''
    stream.on('data', (d) => { b += d })
    stream.on('end', () => resolve(b))
    stream.on('error', reject)
    stream.end()
  })
  assert.equal(body, 'via 2 portico')
})

test('an HTTP listener with redirectToHttps answers 308 to https, keeping path and query', async (t) => {
  const c = await certs()
  const origin = await startOrigin()
  const proxy = await start({
    listen: [{ host: '127.0.0.1', port: 0, redirectToHttps: 8443 }, { host: '127.0.0.1', port: 0, tls: true }],
    tls: { certificates: [{ hosts: ['example.test'], cert: c.site.certFile, key: c.site.keyFile }] },
    upstreams: { '*': [origin.url] }
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const r = await send(`${proxy.urls[0]}/a/b?c=%20d`, { method: 'POST', headers: { host: 'Example.test:80', 'content-length': '0' } })
  assert.equal(r.status, 308)
  assert.equal(r.headers.location, 'https://example.test:8443/a/b?c=%20d')
  assert.equal(origin.requests.length, 0)
})

test('certificates reload when their files change, without a restart; a bad file keeps the old one', async (t) => {
  const c = await certs()
  const origin = await startOrigin()
  const proxy = await start({
    listen: [{ host: '127.0.0.1', port: 0, tls: true }],
    tls: { certificates: [{ hosts: ['example.test'], cert: c.site.certFile, key: c.site.keyFile }] },
    upstreams: { '*': [origin.url] }
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const port = proxy.ports[0]
  const before = (await peerCert(port, 'example.test')).fingerprint256
  const fresh = await testCert(['example.test'], mkdtempSync(path.join(tmpdir(), 'portico-tls-')))
  writeFileSync(c.site.keyFile, readFileSync(fresh.keyFile))
  writeFileSync(c.site.certFile, readFileSync(fresh.certFile))
  const expected = new X509Certificate(fresh.cert).fingerprint256
  let now = before
  await until(async () => (now = (await peerCert(port, 'example.test')).fingerprint256) === expected, { ms: 5000, every: 100 })
  assert.equal(now, expected)
  assert.equal((await peerCert(port)).fingerprint256, expected, 'the default (no SNI) certificate reloads too')
  writeFileSync(c.site.certFile, 'not a certificate')
  await sleep(600)
  assert.equal((await peerCert(port, 'example.test')).fingerprint256, expected)
  assert.ok(proxy.logs.some((l) => l.msg === 'certificate reload failed; keeping the old one'))
})

test('WebSocket over TLS (HTTP/1.1 upgrade on the HTTP/2-capable listener)', async (t) => {
  const c = await certs()
  const origin = await startOrigin()
  const wss = new WebSocketServer({ server: origin.server })
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`tls: ${d.toString()}`)))
  const proxy = await start({
    listen: [{ host: '127.0.0.1', port: 0, tls: true }],
    tls: { certificates: [{ hosts: ['example.test'], cert: c.site.certFile, key: c.site.keyFile }] },
    upstreams: { '*': [origin.url] }
  })
  t.after(async () => { wss.close(); await Promise.all([proxy.close(), origin.close()]) })
  const ws = new WebSocket(`wss://127.0.0.1:${proxy.ports[0]}/`, { ca: c.site.cert, servername: 'example.test', headers: { host: 'example.test' } } as never)
  await once(ws, 'open')
  ws.send('hi')
  const [m] = await once(ws, 'message') as [Buffer]
  assert.equal(m.toString(), 'tls: hi')
  ws.close()
})

test('encrypted server key with passphraseEnv; TLS session resumption', async (t) => {
  const c = await certs()
  const { createPrivateKey } = await import('node:crypto')
  const encrypted = createPrivateKey(c.site.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 's3cret' }) as string
  const keyFile = path.join(c.dir, 'encrypted-key.pem')
  writeFileSync(keyFile, encrypted)
  process.env.PORTICO_TEST_KEY_PASS = 's3cret'
  const origin = await startOrigin()
  const proxy = await start({
    listen: [{ host: '127.0.0.1', port: 0, tls: true, http2: false }],
    tls: { certificates: [{ hosts: ['example.test'], cert: c.site.certFile, key: keyFile, passphraseEnv: 'PORTICO_TEST_KEY_PASS' }] },
    upstreams: { '*': [origin.url] }
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const port = proxy.ports[0]
  assert.match((await peerCert(port, 'example.test')).subject, /CN=example\.test/)

  // Resumption: a second TLS 1.2 handshake offering the first one's session resumes it.
  const connect = (session?: Buffer): Promise<{ reused: boolean, session: Buffer | undefined }> => new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'example.test', ca: c.site.cert, maxVersion: 'TLSv1.2', session }, () => {
      const out = { reused: s.isSessionReused(), session: s.getSession() }
      s.end()
      resolve(out)
    })
    s.on('error', reject)
  })
  const first = await connect()
  const second = await connect(first.session)
  assert.equal(second.reused, true)

})

test('wss:// upstream: a WebSocket tunnelled to a TLS node, verified with tls.ca', async (t) => {
  const c = await certs()
  const node = https.createServer({ cert: c.site.cert, key: c.site.key })
  const wss = new WebSocketServer({ server: node })
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`wss node: ${d.toString()}`)))
  await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve))
  const nodePort = (node.address() as { port: number }).port
  const proxy = await start({
    listen: [{ host: '127.0.0.1', port: 0 }],
    routes: [{ host: '*', upstream: { nodes: [`https://127.0.0.1:${nodePort}`], tls: { ca: c.site.certFile, serverName: 'example.test' } } }]
  })
  t.after(async () => { wss.close(); await proxy.close(); await new Promise((resolve) => node.close(resolve)) })
  const ws = new WebSocket(`ws://127.0.0.1:${proxy.ports[0]}/`)
  await once(ws, 'open')
  ws.send('over tls')
  const [m] = await once(ws, 'message') as [Buffer]
  assert.equal(m.toString(), 'wss node: over tls')
  ws.close()
})
