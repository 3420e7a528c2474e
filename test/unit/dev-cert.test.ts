import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { parse } from 'yaml'
import { describeDevCertificate, normalizeDevHost, writeDevCertificate } from '../../src/cli/dev-cert.js'
import { loadConfigObject } from '../../src/index.js'

const DAY_MS = 24 * 60 * 60 * 1000

function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-dev-cert-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('writes <first-host>.pem and <first-host>-key.pem that load as a TLS context', async (t) => {
  const dir = tempDir(t)
  const out = path.join(dir, 'certs')
  const files = await writeDevCertificate({ hosts: ['localhost', 'app.localhost'], outDir: out })
  assert.equal(files.cert, path.join(out, 'localhost.pem'))
  assert.equal(files.key, path.join(out, 'localhost-key.pem'))
  const cert = readFileSync(files.cert)
  const key = readFileSync(files.key)
  assert.doesNotThrow(() => createSecureContext({ cert, key }))
  assert.ok(new X509Certificate(cert).checkPrivateKey(createPrivateKey(key)))
  if (process.platform !== 'win32') assert.equal(statSync(files.key).mode & 0o777, 0o600)
})

test('has a SAN for every host: DNS names, and IP addresses for IP literals', async (t) => {
  const files = await writeDevCertificate({ hosts: ['LocalHost', '*.app.localhost', '127.0.0.1', '[::1]'], outDir: tempDir(t) })
  const x509 = new X509Certificate(readFileSync(files.cert))
  assert.equal(x509.subjectAltName, 'DNS:localhost, DNS:*.app.localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1')
  assert.deepEqual(files.hosts, ['localhost', '*.app.localhost', '127.0.0.1', '::1'])
  assert.equal(x509.checkHost('localhost'), 'localhost')
  assert.equal(x509.checkHost('api.app.localhost'), '*.app.localhost')
  assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1')
  assert.equal(x509.checkIP('::1'), '::1')
  assert.equal(x509.checkHost('example.com'), undefined)
  assert.equal(x509.ca, false)
  // Self-signed: it verifies with its own key.
  assert.ok(x509.verify(x509.publicKey))
})

test('is valid from now for 30 days by default, or for --days', async (t) => {
  const dir = tempDir(t)
  const now = Date.now()
  const def = new X509Certificate(readFileSync((await writeDevCertificate({ hosts: ['localhost'], outDir: dir })).cert))
  assert.ok(Date.parse(def.validFrom) <= now)
  assert.ok(Math.abs(Date.parse(def.validTo) - (now + 30 * DAY_MS)) < 5 * 60_000, def.validTo)
  const week = new X509Certificate(readFileSync((await writeDevCertificate({ hosts: ['localhost'], outDir: dir, days: 7 })).cert))
  assert.ok(Math.abs(Date.parse(week.validTo) - (now + 7 * DAY_MS)) < 5 * 60_000, week.validTo)
})

test('replaces older files and tightens the mode of an existing key file', async (t) => {
  const dir = tempDir(t)
  writeFileSync(path.join(dir, 'localhost-key.pem'), 'old', { mode: 0o644 })
  const files = await writeDevCertificate({ hosts: ['localhost'], outDir: dir })
  assert.match(readFileSync(files.key, 'utf8'), /^-----BEGIN PRIVATE KEY-----/)
  if (process.platform !== 'win32') assert.equal(statSync(files.key).mode & 0o777, 0o600)
})

test('file names for wildcard and IPv6 first hosts are plain', async (t) => {
  const dir = tempDir(t)
  assert.equal(path.basename((await writeDevCertificate({ hosts: ['*.app.localhost'], outDir: dir })).cert), '_wildcard.app.localhost.pem')
  assert.equal(path.basename((await writeDevCertificate({ hosts: ['::1'], outDir: dir })).key), '__1-key.pem')
})

test('rejects no hosts, invalid hosts and invalid days with RangeError', async (t) => {
  const dir = tempDir(t)
  await assert.rejects(writeDevCertificate({ hosts: [], outDir: dir }), RangeError)
  await assert.rejects(writeDevCertificate({ hosts: ['localhost', 'bad host'], outDir: dir }), RangeError)
  await assert.rejects(writeDevCertificate({ hosts: ['localhost:8443'], outDir: dir }), RangeError)
  await assert.rejects(writeDevCertificate({ hosts: ['localhost'], outDir: dir, days: 0 }), RangeError)
  await assert.rejects(writeDevCertificate({ hosts: ['localhost'], outDir: dir, days: 1.5 }), RangeError)
  assert.throws(() => normalizeDevHost('http://localhost'), RangeError)
})

test('the printed config snippet is a valid Portico config using the files', async (t) => {
  const dir = tempDir(t)
  const files = await writeDevCertificate({ hosts: ['localhost', '127.0.0.1', '::1'], outDir: path.join(dir, 'certs') })
  const text = describeDevCertificate(files, dir)
  assert.ok(text.includes(files.cert))
  assert.ok(text.includes(files.key))
  const yaml = text.slice(text.indexOf('listen:'))
  const doc = parse(yaml) as Record<string, unknown>
  assert.deepEqual(doc.tls, { certificates: [{ hosts: ['localhost', '127.0.0.1', '[::1]'], cert: './certs/localhost.pem', key: './certs/localhost-key.pem' }] })
  const config = await loadConfigObject({ ...doc, upstreams: { '*': ['http://127.0.0.1:1'] } }, { baseDir: dir })
  assert.equal(config.tls?.certificates[0].certFile, files.cert)
  assert.equal(config.listen[0].tls, true)
})
