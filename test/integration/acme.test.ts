/**
 * Automatic HTTPS against a real ACME CA (Debian's Pebble, test/helpers/pebble.ts): certificates for the routes'
 * names obtained by HTTP-01 on the cleartext listener or by TLS-ALPN-01 on the TLS one, served by SNI to a client
 * that trusts Pebble's root, kept on disk with private keys 0600 (or in Redis, shared by two instances) and loaded
 * from there by the next start without a new order; failures retried with backoff; renewal at renewBefore or in the
 * CA's renewal window (ARI); on-demand TLS; reload.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import https from 'node:https'
import tls from 'node:tls'
import http2 from 'node:http2'
import { X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { captureLogs, closedPort, runCli, send, startOrigin, type Origin } from '../helpers/servers.js'
import { NO_PEBBLE, startPebble, type Pebble, type RenewalWindow } from '../helpers/pebble.js'
import { eventually } from '../helpers/poll.js'
import { redisOrSkip, startRedis } from '../helpers/redis.js'

/** The leaf certificate a TLS client gets for `servername`, and whether it verified against `ca`. */
function peerCertificate (port: number, servername: string, ca: string): Promise<{ leaf: X509Certificate, authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerX509Certificate()
      socket.end()
      if (raw === undefined) reject(new Error('no certificate'))
      else resolve({ leaf: raw, authorized: socket.authorized })
    })
    socket.on('error', reject)
  })
}

/**
 * Pebble validating HTTP-01 on a free port (for the cleartext listener under test) and TLS-ALPN-01 on `tlsPort`, a
 * storage directory and an origin, all removed after the test; null (the test skipped) without Pebble.
 */
async function acmeSetup (t: TestContext, tlsPort?: number): Promise<{ httpPort: number, pebble: Pebble, storage: string, origin: Origin } | null> {
  const httpPort = await closedPort()
  const pebble = await startPebble(httpPort, tlsPort)
  if (pebble === null) {
    t.skip(NO_PEBBLE)
    return null
  }
  const storage = mkdtempSync(path.join(os.tmpdir(), 'portico-acme-'))
  const origin = await startOrigin()
  t.after(async () => {
    await pebble.stop()
    await origin.close()
    rmSync(storage, { recursive: true, force: true })
  })
  return { httpPort, pebble, storage, origin }
}

test('certificates for two names by HTTP-01 from an ACME CA, served by SNI, stored 0600 and reused by the next start', async (t) => {
  const setup = await acmeSetup(t)
  if (setup === null) return
  const { httpPort, pebble, storage, origin } = setup
  const { createProxy } = await import('../../src/index.js')
  const config = {
    listen: [{ host: '127.0.0.1', port: httpPort }, { host: '127.0.0.1', port: 0, tls: true }],
    admin: { host: '127.0.0.1', port: 0 },
    routes: [
      { host: 'a.test', upstream: [origin.url] },
      { host: 'b.test', upstream: [origin.url] },
      { host: '*.wild.test', upstream: [origin.url] }
    ],
    tls: { acme: { email: 'ops@example.com', directory: pebble.directory, ca: pebble.caFile, storage: { dir: storage } } }
  }
  const logs = captureLogs()
  const proxy = createProxy(config, { logger: logs.logger })
  const [plain, secure] = await proxy.listen()
  const root = await pebble.root()

  // Before any certificate, a client gets the generated default (not trusted).
  const early = await peerCertificate(secure.port, 'a.test', root)
  assert.equal(early.authorized, false)

  for (const name of ['a.test', 'b.test']) {
    await eventually(`a certificate for ${name}`, async () => (await peerCertificate(secure.port, name, root)).authorized, { ms: 30_000, every: 100 })
    const { leaf } = await peerCertificate(secure.port, name, root)
    assert.ok(leaf.checkHost(name), `${name} is in the certificate`)
    assert.match(leaf.issuer, /Pebble/)
  }
  assert.deepEqual(proxy.certificates().map((c) => [c.name, c.state]).sort(), [['a.test', 'valid'], ['b.test', 'valid']], 'the wildcard route is not managed')
  const notAfter = Date.parse(proxy.certificates().find((c) => c.name === 'a.test')?.notAfter ?? '')
  assert.ok(notAfter > Date.now())
  const metrics = (await send(`${proxy.adminAddress?.url ?? ''}/metrics`)).body.toString()
  assert.match(metrics, new RegExp(`^portico_certificate_expiry_timestamp_seconds\\{name="a\\.test"\\} ${notAfter / 1000}$`, 'm'))
  assert.match(metrics, /^portico_certificate_state\{state="valid"\} 2$/m)
  assert.equal(statSync(path.join(storage, 'certificates/a.test/key.pem')).mode & 0o777, 0o600)
  assert.equal(statSync(path.join(storage, 'account-key.pem')).mode & 0o777, 0o600)
  const obtained = logs.lines.filter((l) => l.msg === 'certificate obtained')
  assert.equal(obtained.length, 2)
  t.diagnostic(`issuance against Pebble, ms per name: ${obtained.map((l) => String(l.ms)).join(', ')}`)
  // The log says at start which route names are not managed, and for each certificate when it will be renewed.
  assert.deepEqual(logs.lines.find((l) => String(l.msg).startsWith('not managed by automatic HTTPS'))?.hosts, ['*.wild.test'])
  await eventually('the renewal plans', () => logs.lines.filter((l) => l.msg === 'certificate renewal planned').length === 2, { ms: 10_000, every: 50 })
  for (const plan of logs.lines.filter((l) => l.msg === 'certificate renewal planned')) {
    const managed = proxy.certificates().find((c) => c.name === plan.name)
    assert.equal(plan.renewAt, managed?.nextAttempt)
    assert.equal(plan.by, 'renewBefore', 'Pebble offers no renewal information')
    assert.ok(Date.parse(String(plan.renewAt)) < Date.parse(managed?.notAfter ?? '') - 29 * 24 * 60 * 60 * 1000)
  }
  // The cleartext listener still routes everything else.
  assert.equal((await send(`${plain.url}/x`, { headers: { host: 'a.test' } })).status, 200)
  await proxy.close({ drainTimeout: 500 })

  // portico check lists the managed names with what storage holds, and the names it cannot manage.
  const file = path.join(storage, 'check.yaml')
  writeFileSync(file, [
    'listen: [{ host: 127.0.0.1, port: 0 }, { host: 127.0.0.1, port: 0, tls: true }]',
    `upstreams: { a.test: ["${origin.url}"], b.test: ["${origin.url}"], "*.wild.test": ["${origin.url}"] }`,
    `tls: { acme: { email: ops@example.com, directory: "${pebble.directory}", storage: { dir: "${storage}" } } }`,
    ''
  ].join('\n'))
  const check = await runCli(['check', '--config', file])
  assert.equal(check.code, 0, check.stderr)
  assert.match(check.stdout, /a\.test +Pebble Intermediate CA [0-9a-f]+, expires \d{4}-/)
  assert.match(check.stdout, /not managed .*\*\.wild\.test/)

  // The next start serves the stored certificates at once and orders nothing.
  const logs2 = captureLogs()
  const again = createProxy({ ...config, listen: [{ host: '127.0.0.1', port: httpPort }, { host: '127.0.0.1', port: 0, tls: true }] }, { logger: logs2.logger })
  const [, secure2] = await again.listen()
  t.after(() => again.close({ drainTimeout: 500 }))
  assert.equal((await peerCertificate(secure2.port, 'b.test', root)).authorized, true)
  assert.equal(logs2.lines.filter((l) => l.msg === 'certificate loaded from storage').length, 2)
  assert.equal(logs2.lines.filter((l) => l.msg === 'certificate obtained').length, 0)
})

test('certificates for two names by TLS-ALPN-01 alone, on a TLS listener with no cleartext one; other handshakes pass through', async (t) => {
  const tlsPort = await closedPort()
  const setup = await acmeSetup(t, tlsPort)
  if (setup === null) return
  const { pebble, storage, origin } = setup
  const { createProxy } = await import('../../src/index.js')
  const logs = captureLogs()
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: tlsPort, tls: true }],
    routes: [{ host: 'a.test', upstream: [origin.url] }, { host: 'b.test', upstream: [origin.url] }],
    tls: { acme: { email: 'ops@example.com', directory: pebble.directory, ca: pebble.caFile, storage: { dir: storage }, challenges: ['tls-alpn-01'] } }
  }, { logger: logs.logger })
  await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  const root = await pebble.root()
  for (const name of ['a.test', 'b.test']) {
    await eventually(`a certificate for ${name}`, async () => (await peerCertificate(tlsPort, name, root)).authorized, { ms: 30_000, every: 100 })
    assert.ok((await peerCertificate(tlsPort, name, root)).leaf.checkHost(name))
  }
  const obtained = logs.lines.filter((l) => l.msg === 'certificate obtained')
  assert.equal(obtained.length, 2)
  // Pebble validated each name over acme-tls/1 (it may connect more than once per name).
  const answered = new Set(logs.lines.filter((l) => l.msg === 'TLS-ALPN-01 challenge answered').map((l) => l.name))
  assert.deepEqual([...answered].sort(), ['a.test', 'b.test'])
  t.diagnostic(`issuance by TLS-ALPN-01 against Pebble, ms per name: ${obtained.map((l) => String(l.ms)).join(', ')}`)

  // Ordinary handshakes go to the listener untouched: HTTP/1.1 and HTTP/2 by ALPN, with the issued certificate.
  const h1 = await new Promise<{ status: number, alpn: string | false | null }>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: tlsPort, servername: 'a.test', headers: { host: 'a.test' }, path: '/h1', ca: root, ALPNProtocols: ['http/1.1'], agent: false } as https.RequestOptions, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, alpn: (res.socket as tls.TLSSocket).alpnProtocol }))
    }).on('error', reject)
  })
  assert.deepEqual(h1, { status: 200, alpn: 'http/1.1' })
  const session = http2.connect(`https://127.0.0.1:${tlsPort}`, { ca: root, servername: 'a.test' })
  t.after(() => session.close())
  const h2status = await new Promise<number>((resolve, reject) => {
    const req = session.request({ ':path': '/h2', ':authority': 'a.test' })
    req.on('response', (h) => { req.resume(); resolve(Number(h[':status'])) })
    req.on('error', reject)
    req.end()
  })
  assert.equal(h2status, 200)
  session.close()

  // acme-tls/1 for a name with no pending challenge: the handshake fails with no_application_protocol (RFC 7301).
  const refused = await new Promise<Error & { code?: string }>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'c.test', ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false }, () => resolve(new Error('handshake completed')))
    socket.on('error', resolve)
  })
  assert.equal(refused.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL')
})

test('a challenge the CA cannot complete is logged and retried later; pending: refuse refuses that name\'s handshakes meanwhile', async (t) => {
  const setup = await acmeSetup(t)
  if (setup === null) return
  const { pebble, storage } = setup
  const { createProxy } = await import('../../src/index.js')
  // The cleartext listener is not on the port Pebble validates: every HTTP-01 challenge fails.
  const logs = captureLogs()
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: true }],
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { 'a.test': ['http://127.0.0.1:9'] },
    tls: { acme: { email: 'ops@example.com', directory: pebble.directory, ca: pebble.caFile, storage: { dir: storage }, pending: 'refuse' as const } }
  }, { logger: logs.logger })
  const [, secure] = await proxy.listen()
  // The pending name gets no handshake; any other name still gets the default certificate.
  await assert.rejects(peerCertificate(secure.port, 'a.test', await pebble.root()))
  assert.equal((await peerCertificate(secure.port, 'other.test', await pebble.root())).authorized, false)
  t.after(() => proxy.close({ drainTimeout: 500 }))
  await eventually('the failure is logged', () => logs.lines.some((l) => l.msg === 'certificate order failed; retrying later'), { ms: 30_000, every: 100 })
  const failed = logs.lines.find((l) => l.msg === 'certificate order failed; retrying later') as { name: string, err: string, retryAt: string }
  assert.equal(failed.name, 'a.test')
  assert.ok(Date.parse(failed.retryAt) > Date.now() + 20_000, 'retried after a backoff, not at once')
  const [state] = proxy.certificates()
  assert.equal(state.state, 'failed')
  assert.ok(state.lastError !== null && state.lastError.length > 0)
  // The admin API says the same.
  const listed = JSON.parse((await send(`${proxy.adminAddress?.url ?? ''}/certificates`)).body.toString()) as { name: string, state: string, nextAttempt: string }[]
  assert.deepEqual(listed.map((c) => [c.name, c.state]), [['a.test', 'failed']])
  assert.equal(listed[0].nextAttempt, failed.retryAt)
  const metrics = (await send(`${proxy.adminAddress?.url ?? ''}/metrics`)).body.toString()
  assert.match(metrics, /^portico_certificate_state\{state="failed"\} 1$/m)
  assert.doesNotMatch(metrics, /^portico_certificate_expiry_timestamp_seconds\{/m, 'no expiry for a name without a certificate')
})

test('renewal: a certificate due for renewal is replaced in the SNI table while a keep-alive connection stays open', async (t) => {
  const setup = await acmeSetup(t)
  if (setup === null) return
  const { httpPort, pebble, storage, origin } = setup
  const { createProxy } = await import('../../src/index.js')
  const base = {
    listen: [{ host: '127.0.0.1', port: httpPort }, { host: '127.0.0.1', port: 0, tls: true }],
    upstreams: { 'a.test': [origin.url] },
    tls: { acme: { email: 'ops@example.com', directory: pebble.directory, ca: pebble.caFile, storage: { dir: storage } } }
  }
  const root = await pebble.root()
  const first = createProxy(base)
  const [, s1] = await first.listen()
  await eventually('a first certificate', async () => (await peerCertificate(s1.port, 'a.test', root)).authorized, { ms: 30_000, every: 100 })
  const before = (await peerCertificate(s1.port, 'a.test', root)).leaf.serialNumber
  await first.close({ drainTimeout: 500 })

  // Pebble's certificates live five years: a renewBefore longer than that makes the stored one due at start.
  // The CA is held still until a connection has been made on the stored certificate.
  pebble.pause()
  const logs = captureLogs()
  const proxy = createProxy({ ...base, tls: { acme: { ...base.tls.acme, renewBefore: '2000d' } } }, { logger: logs.logger })
  const [, secure] = await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  // A keep-alive connection made on the stored certificate (before the renewal lands)...
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: root, servername: 'a.test' })
  t.after(() => agent.destroy())
  const get = (): Promise<{ status: number, serial: string, socket: tls.TLSSocket }> => new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: secure.port, path: '/', headers: { host: 'a.test' }, agent, servername: 'a.test' }, (res) => {
      const socket = res.socket as tls.TLSSocket
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? ''
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serial, socket }))
    }).on('error', reject)
  })
  const early = await get()
  assert.equal(early.status, 200)
  assert.ok(logs.lines.some((l) => l.msg === 'certificate loaded from storage'))
  pebble.resume()
  await eventually('the renewal', () => logs.lines.some((l) => l.msg === 'certificate renewed'), { ms: 30_000, every: 100 })
  t.diagnostic(`renewal against Pebble (including the time the CA was held): ${String(logs.lines.find((l) => l.msg === 'certificate renewed')?.ms)} ms`)
  // ...keeps serving on the same connection with the certificate it shook hands with; a new handshake gets the new one.
  const later = await get()
  assert.equal(later.status, 200)
  assert.equal(later.socket, early.socket, 'the same TLS connection')
  const fresh = (await peerCertificate(secure.port, 'a.test', root)).leaf.serialNumber
  assert.notEqual(fresh, before, 'a new handshake gets the renewed certificate')
  assert.equal(early.serial, before)
})

test('ACME Renewal Information (RFC 9773): the CA\'s window schedules the renewal, and a window already open renews at once', async (t) => {
  const setup = await acmeSetup(t)
  if (setup === null) return
  const { httpPort, pebble, storage, origin } = setup
  const { createProxy } = await import('../../src/index.js')
  const { ariCertId } = await import('../../src/acme/renewal-info.js')
  const day = 24 * 60 * 60 * 1000
  let window: RenewalWindow = { start: new Date(Date.now() + 30 * day), end: new Date(Date.now() + 31 * day), retryAfter: 3600 }
  const ari = await pebble.withRenewalInfo(() => window)
  const config = {
    listen: [{ host: '127.0.0.1', port: httpPort }, { host: '127.0.0.1', port: 0, tls: true }],
    routes: [{ host: 'a.test', upstream: [origin.url] }],
    tls: { acme: { email: 'ops@example.com', directory: ari.directory, ca: pebble.caFile, storage: { dir: storage } } }
  }
  const root = await pebble.root()

  // Pebble's certificates last five years: renewBefore (30 days) alone would renew in about five years. The CA's
  // window, 30 days from now, comes first.
  const logs = captureLogs()
  const proxy = createProxy(config, { logger: logs.logger })
  const [, secure] = await proxy.listen()
  await eventually('a certificate for a.test', async () => (await peerCertificate(secure.port, 'a.test', root)).authorized, { ms: 30_000, every: 100 })
  await eventually('the renewal window', () => proxy.certificates()[0]?.renewalWindow !== null, { ms: 10_000, every: 50 })
  const first = (await peerCertificate(secure.port, 'a.test', root)).leaf
  const managed = proxy.certificates()[0]
  assert.deepEqual(managed.renewalWindow, { start: window.start.toISOString(), end: window.end.toISOString(), explanationURL: null })
  const next = Date.parse(managed.nextAttempt ?? '')
  assert.ok(next >= window.start.getTime() && next <= window.end.getTime(), `renewal planned inside the window: ${managed.nextAttempt}`)
  assert.ok(ari.requests.includes(ariCertId(first.toString()) ?? ''), 'the CA was asked about this certificate by its ARI identifier')
  assert.equal(logs.lines.filter((l) => l.msg === 'renewal window from the CA (ARI)').length, 1)
  await proxy.close({ drainTimeout: 500 })

  // The CA now wants it renewed (say, before a revocation): the next start renews at once, and says why.
  window = { start: new Date(Date.now() - 2 * 60 * 60 * 1000), end: new Date(Date.now() - 60 * 60 * 1000), explanationURL: 'https://ca.example/incident' }
  const logs2 = captureLogs()
  const again = createProxy({ ...config, listen: [{ host: '127.0.0.1', port: httpPort }, { host: '127.0.0.1', port: 0, tls: true }] }, { logger: logs2.logger })
  const [, secure2] = await again.listen()
  t.after(() => again.close({ drainTimeout: 500 }))
  await eventually('the renewed certificate', () => logs2.lines.some((l) => l.msg === 'certificate renewed'), { ms: 30_000, every: 100 })
  const renewed = (await peerCertificate(secure2.port, 'a.test', root)).leaf
  assert.notEqual(renewed.serialNumber, first.serialNumber)
  const early = logs2.lines.find((l) => l.msg === 'renewal window from the CA (ARI)')
  assert.equal(early?.level, 40, 'an early renewal with an explanation is a warning')
  assert.equal(early?.explanationURL, 'https://ca.example/incident')
  // The new certificate is in the same (past) window: looked at again at the next check, not renewed in a loop.
  await eventually('the new certificate\'s plan', () => ari.requests.includes(ariCertId(renewed.toString()) ?? ''), { ms: 10_000, every: 50 })
  await eventually('its next attempt', () => Date.parse(again.certificates()[0].nextAttempt ?? '') > Date.now() + 11 * 60 * 60 * 1000, { ms: 10_000, every: 50 })
  assert.equal(logs2.lines.filter((l) => l.msg === 'certificate renewed').length, 1)
})

for (const challenge of ['http-01', 'tls-alpn-01'] as const) {
  test(`two instances sharing Redis storage: one orders the name, the other answers its ${challenge} challenge and serves the same certificate`, async (t) => {
    // Pebble validates on A's ports (HTTP-01 on its cleartext listener, TLS-ALPN-01 on its TLS one).
    const tlsPortA = await closedPort()
    const setup = await acmeSetup(t, tlsPortA)
    if (setup === null) return
    const { httpPort, pebble, origin } = setup
    const redis = await startRedis()
    if (!redisOrSkip(t, redis)) return
    t.after(() => redis.stop())
    const prefix = `portico:acme:test-${process.pid}-${Date.now()}:`
    const { createProxy } = await import('../../src/index.js')
    const config = (cleartextPort: number, tlsPort: number): Parameters<typeof createProxy>[0] => ({
      listen: [{ host: '127.0.0.1', port: cleartextPort }, { host: '127.0.0.1', port: tlsPort, tls: true }],
      upstreams: { 'a.test': [origin.url] },
      tls: { acme: { email: 'ops@example.com', directory: pebble.directory, ca: pebble.caFile, storage: { redis: { url: redis.url, prefix } }, challenges: [challenge] } }
    })
    const root = await pebble.root()
    // B starts first and takes the name's lock; the CA reaches A, so A must answer B's challenge from Redis.
    const logsB = captureLogs()
    const b = createProxy(config(0, 0), { logger: logsB.logger })
    const [, secureB] = await b.listen()
    const logsA = captureLogs()
    const a = createProxy(config(httpPort, tlsPortA), { logger: logsA.logger })
    const [, secureA] = await a.listen()
    t.after(() => Promise.all([a.close({ drainTimeout: 500 }), b.close({ drainTimeout: 500 })]))
    for (const port of [secureA.port, secureB.port]) {
      await eventually(`a certificate on ${port}`, async () => (await peerCertificate(port, 'a.test', root)).authorized, { ms: 30_000, every: 100 })
    }
    const obtained = [...logsA.lines, ...logsB.lines].filter((l) => l.msg === 'certificate obtained')
    assert.equal(obtained.length, 1, 'ordered once')
    assert.equal(logsB.lines.filter((l) => l.msg === 'certificate obtained').length, 1, 'by the instance that took the lock')
    if (challenge === 'tls-alpn-01') assert.ok(logsA.lines.some((l) => l.msg === 'TLS-ALPN-01 challenge answered'), 'A answered the validation handshake')
    assert.equal((await peerCertificate(secureA.port, 'a.test', root)).leaf.serialNumber, (await peerCertificate(secureB.port, 'a.test', root)).leaf.serialNumber)
  })
}

test('on-demand TLS: a name first seen in a handshake is ordered then if the ask endpoint allows it, within the rate', async (t) => {
  const setup = await acmeSetup(t)
  if (setup === null) return
  const { httpPort, pebble, storage, origin } = setup
  const asked: string[] = []
  const ask = await startOrigin((req, res) => {
    const domain = new URL(req.url ?? '/', 'http://x').searchParams.get('domain') ?? ''
    asked.push(domain)
    res.statusCode = domain.startsWith('yes') ? 200 : 403
    res.end()
  })
  t.after(() => ask.close())
  const { createProxy } = await import('../../src/index.js')
  const logs = captureLogs()
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: httpPort }, { host: '127.0.0.1', port: 0, tls: true }],
    upstreams: { '*': [origin.url] },
    tls: { acme: { email: 'ops@example.com', directory: pebble.directory, ca: pebble.caFile, storage: { dir: storage }, onDemand: { ask: `${ask.url}/check`, rateLimit: '2/m' } } }
  }, { logger: logs.logger })
  const [, secure] = await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  const root = await pebble.root()
  assert.deepEqual(proxy.certificates(), [], 'nothing managed before a handshake')
  // The handshake for an allowed name waits for its certificate.
  const allowed = await peerCertificate(secure.port, 'yes.test', root)
  assert.equal(allowed.authorized, true)
  assert.ok(allowed.leaf.checkHost('yes.test'))
  // A refused name gets the default certificate, and is not asked about again right away.
  assert.equal((await peerCertificate(secure.port, 'no.test', root)).authorized, false)
  assert.equal((await peerCertificate(secure.port, 'no.test', root)).authorized, false)
  assert.deepEqual(asked, ['yes.test', 'no.test'])
  // Past the rate (2 attempts a minute), an allowed name is not even asked about: the default certificate.
  assert.equal((await peerCertificate(secure.port, 'yes2.test', root)).authorized, false)
  assert.deepEqual(asked, ['yes.test', 'no.test'])
  assert.ok(logs.lines.some((l) => l.msg === 'on-demand certificate refused: rate or concurrency limit' && l.name === 'yes2.test'))
  assert.deepEqual(proxy.certificates().map((c) => [c.name, c.state]), [['yes.test', 'valid']])
})

test('reload: names a new config adds are managed, names it drops stop being renewed', async (t) => {
  const setup = await acmeSetup(t)
  if (setup === null) return
  const { pebble, storage } = setup
  const { createProxy } = await import('../../src/index.js')
  // Challenges fail here (the cleartext listener is not on Pebble's port): only which names are managed matters.
  const config = (names: string[]): Parameters<typeof createProxy>[0] => ({
    listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: true }],
    upstreams: Object.fromEntries(names.map((n) => [n, ['http://127.0.0.1:9']])),
    tls: { acme: { email: 'ops@example.com', directory: pebble.directory, ca: pebble.caFile, storage: { dir: storage } } }
  })
  const logs = captureLogs()
  const proxy = createProxy(config(['a.test', 'b.test']), { logger: logs.logger })
  await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  assert.deepEqual(proxy.certificates().map((c) => c.name).sort(), ['a.test', 'b.test'])
  await proxy.reload(config(['b.test', 'c.test']))
  assert.deepEqual(proxy.certificates().map((c) => c.name).sort(), ['b.test', 'c.test'])
  assert.ok(logs.lines.some((l) => l.msg === 'certificate no longer managed (not in the config)' && l.name === 'a.test'))
  // Orders still talking to the CA would outlive it (acme-client cannot be cancelled): let them fail first.
  await eventually('every order settled', () => proxy.certificates().every((c) => c.state === 'failed'), { ms: 30_000, every: 100 })
})
