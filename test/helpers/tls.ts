/**
 * Test certificates, generated at test time with `selfsigned` and written to a temp dir (never committed).
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { isIP } from 'node:net'
import { generate } from 'selfsigned'

export interface TestCert {
  cert: string
  key: string
  certFile: string
  keyFile: string
}

/** A self-signed EC certificate for `hosts` (DNS or IP SANs), its files in a fresh temp dir. */
export async function testCert (hosts: string[], dir = mkdtempSync(path.join(tmpdir(), 'portico-tls-'))): Promise<TestCert> {
  const pems = await generate([{ name: 'commonName', value: hosts[0] }], {
    keyType: 'ec',
    curve: 'P-256',
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 7 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'subjectAltName', altNames: hosts.map((h) => isIP(h) ? { type: 7 as const, ip: h } : { type: 2 as const, value: h }) }
    ]
  } as never)
  const base = hosts[0].replace(/[^a-z0-9.-]/gi, '_')
  const certFile = path.join(dir, `${base}.pem`)
  const keyFile = path.join(dir, `${base}-key.pem`)
  writeFileSync(certFile, pems.cert)
  writeFileSync(keyFile, pems.private, { mode: 0o600 })
  return { cert: pems.cert, key: pems.private, certFile, keyFile }
}
