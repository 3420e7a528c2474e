/**
 * Automatic HTTPS against a real ACME CA (Debian's Pebble, test/helpers/pebble.ts): certificates for the routes'
 * names obtained by HTTP-01 on the cleartext listener, served by SNI to a client that trusts Pebble's root, kept on
 * disk with private keys 0600 and loaded from there by the next start without a new order.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { captureLogs, closedPort, send, startOrigin } from '../helpers/servers.js'
import { NO_PEBBLE, startPebble } from '../helpers/pebble.js'
import { eventually } from '../helpers/poll.js'

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

test('certificates for two names by HTTP-01 from an ACME CA, served by SNI, stored 0600 and reused by the next start', async (t) => {
  const httpPort = await closedPort()
  const pebble = await startPebble(httpPort)
  if (pebble === null) {
    t.skip(NO_PEBBLE)
    return
  }
  const storage = mkdtempSync(path.join(os.tmpdir(), 'portico-acme-'))
  const origin = await startOrigin()
  t.after(async () => {
    await pebble.stop()
    await origin.close()
    rmSync(storage, { recursive: true, force: true })
  })
  const { createProxy } = await import('../../src/index.js')
  const config = {
    listen: [{ host: '127.0.0.1', port: httpPort }, { host: '127.0.0.1', port: 0, tls: true }],
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
  assert.equal(statSync(path.join(storage, 'certificates/a.test/key.pem')).mode & 0o777, 0o600)
  assert.equal(statSync(path.join(storage, 'account-key.pem')).mode & 0o777, 0o600)
  const obtained = logs.lines.filter((l) => l.msg === 'certificate obtained')
  assert.equal(obtained.length, 2)
  // The cleartext listener still routes everything else.
  assert.equal((await send(`${plain.url}/x`, { headers: { host: 'a.test' } })).status, 200)
  await proxy.close({ drainTimeout: 500 })

  // The next start serves the stored certificates at once and orders nothing.
  const logs2 = captureLogs()
  const again = createProxy({ ...config, listen: [{ host: '127.0.0.1', port: httpPort }, { host: '127.0.0.1', port: 0, tls: true }] }, { logger: logs2.logger })
  const [, secure2] = await again.listen()
  t.after(() => again.close({ drainTimeout: 500 }))
  assert.equal((await peerCertificate(secure2.port, 'b.test', root)).authorized, true)
  assert.equal(logs2.lines.filter((l) => l.msg === 'certificate loaded from storage').length, 2)
  assert.equal(logs2.lines.filter((l) => l.msg === 'certificate obtained').length, 0)
})

test('a challenge the CA cannot complete is logged and retried later; the other names are served meanwhile', async (t) => {
  const httpPort = await closedPort()
  const pebble = await startPebble(httpPort)
  if (pebble === null) {
    t.skip(NO_PEBBLE)
    return
  }
  const storage = mkdtempSync(path.join(os.tmpdir(), 'portico-acme-'))
  t.after(async () => {
    await pebble.stop()
    rmSync(storage, { recursive: true, force: true })
  })
  const { createProxy } = await import('../../src/index.js')
  // The cleartext listener is not on the port Pebble validates: every HTTP-01 challenge fails.
  const logs = captureLogs()
  const proxy = createProxy({
    listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0, tls: true }],
    upstreams: { 'a.test': ['http://127.0.0.1:9'] },
    tls: { acme: { email: 'ops@example.com', directory: pebble.directory, ca: pebble.caFile, storage: { dir: storage } } }
  }, { logger: logs.logger })
  await proxy.listen()
  t.after(() => proxy.close({ drainTimeout: 500 }))
  await eventually('the failure is logged', () => logs.lines.some((l) => l.msg === 'certificate order failed; retrying later'), { ms: 30_000, every: 100 })
  const failed = logs.lines.find((l) => l.msg === 'certificate order failed; retrying later') as { name: string, err: string, retryAt: string }
  assert.equal(failed.name, 'a.test')
  assert.ok(Date.parse(failed.retryAt) > Date.now() + 20_000, 'retried after a backoff, not at once')
  const [state] = proxy.certificates()
  assert.equal(state.state, 'failed')
  assert.ok(state.lastError !== null && state.lastError.length > 0)
})
