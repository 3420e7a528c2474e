/**
 * The certificate the HTTPS and HTTP/2 scenarios serve: a self-signed P-256 certificate for `bench.test` and
 * 127.0.0.1, generated once per run with `selfsigned` into the run's temp directory (never committed), in the
 * three forms the targets read: certificate and key files (Portico, nginx, node-http-proxy) and one PEM holding
 * both (HAProxy's `crt`). Load generators and the verifier do not check it.
 */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { generate } from 'selfsigned'

/** The name the certificate is issued for (and the verifier sends as SNI). */
export const TLS_HOST = 'bench.test'

/** Where one run's certificate and key were written. */
export interface BenchCert {
  certFile: string
  keyFile: string
  /** Certificate then key in one file, as HAProxy's `bind ... crt` wants it. */
  pemFile: string
}

/** Generates the certificate and writes its files to `dir`. */
export async function createBenchCert (dir: string): Promise<BenchCert> {
  const pems = await generate([{ name: 'commonName', value: TLS_HOST }], {
    keyType: 'ec',
    curve: 'P-256',
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'subjectAltName', altNames: [{ type: 2, value: TLS_HOST }, { type: 7, ip: '127.0.0.1' }] }
    ]
  } as never)
  const cert: BenchCert = {
    certFile: path.join(dir, 'bench-cert.pem'),
    keyFile: path.join(dir, 'bench-key.pem'),
    pemFile: path.join(dir, 'bench-cert-and-key.pem')
  }
  writeFileSync(cert.certFile, pems.cert)
  writeFileSync(cert.keyFile, pems.private, { mode: 0o600 })
  writeFileSync(cert.pemFile, `${pems.cert.trimEnd()}\n${pems.private}`, { mode: 0o600 })
  return cert
}
