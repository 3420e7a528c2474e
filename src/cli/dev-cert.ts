/**
 * `portico cert --dev`: writes a self-signed certificate and key for local development, with a subject
 * alternative name for every host given (DNS names, and IP addresses for IP literals). It owns host checking,
 * generation (the `selfsigned` package, ECDSA P-256, SHA-256), the file names and modes, and the text the command
 * prints; registering the subcommand and exit statuses are left to `main.ts`.
 *
 * Browsers and clients do not trust such a certificate until it is added to their trust store; that is the point
 * of `--dev`: it is never meant for production.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import path from 'node:path'
import { generate } from 'selfsigned'

/** What to write. */
export interface DevCertificateOptions {
  /** Host names and IP addresses the certificate is valid for; the first names the files. At least one. */
  hosts: string[]
  /** Directory the files are written to (created if missing). */
  outDir: string
  /** Validity in days from now. Default 30. */
  days?: number
}

/** What was written. */
export interface DevCertificateFiles {
  /** The certificate (PEM), `<outDir>/<first-host>.pem`. */
  cert: string
  /** The unencrypted private key (PEM, mode 0600), `<outDir>/<first-host>-key.pem`. */
  key: string
  /** The hosts in the certificate, normalized (lowercase, IPv6 without brackets). */
  hosts: string[]
  notBefore: Date
  notAfter: Date
}

const DAY_MS = 24 * 60 * 60 * 1000
const DNS_NAME = /^(?:\*\.)?(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/

/**
 * Checks one host and returns it normalized: a DNS name (a leading `*.` wildcard allowed) or an IPv4/IPv6 literal
 * (IPv6 with or without brackets). Throws RangeError for anything else.
 */
export function normalizeDevHost (host: string): string {
  const h = host.trim().toLowerCase()
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h
  if (isIP(bare) !== 0) return bare
  if (h.length <= 253 && DNS_NAME.test(h)) return h
  throw new RangeError(`not a host name or IP address: "${host}"`)
}

/**
 * Generates a self-signed certificate for `hosts` and writes it to `outDir` as `<first-host>.pem` and
 * `<first-host>-key.pem` (the key readable by its owner only), replacing files of those names. Valid from a minute
 * ago (clock skew) for `days` days. Throws RangeError for an empty host list, an invalid host or a `days` that is
 * not a positive integer; file system errors are thrown as they come.
 */
export async function writeDevCertificate (options: DevCertificateOptions): Promise<DevCertificateFiles> {
  const days = options.days ?? 30
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`days must be a positive whole number (got ${days})`)
  if (options.hosts.length === 0) throw new RangeError('give at least one host name, such as localhost')
  const hosts = [...new Set(options.hosts.map(normalizeDevHost))]
  const notBefore = new Date(Date.now() - 60_000)
  const notAfter = new Date(notBefore.getTime() + 60_000 + days * DAY_MS)
  const pems = await generate([
    { name: 'commonName', value: hosts[0] },
    { name: 'organizationName', value: 'Portico development certificate' }
  ], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      // RFC 5280 §4.2.1.6: clients match the host against these, not the common name.
      { name: 'subjectAltName', altNames: hosts.map((h) => isIP(h) !== 0 ? { type: 7 as const, ip: h } : { type: 2 as const, value: h }) }
    ]
  })
  mkdirSync(options.outDir, { recursive: true })
  const base = fileBase(hosts[0])
  const cert = path.resolve(options.outDir, `${base}.pem`)
  const key = path.resolve(options.outDir, `${base}-key.pem`)
  writeFileSync(key, pems.private, { mode: 0o600 })
  // The mode option applies only when the file is created; an older key file keeps its mode otherwise.
  chmodSync(key, 0o600)
  writeFileSync(cert, pems.cert)
  return { cert, key, hosts, notBefore, notAfter }
}

/** A file name for a host: "*.app.localhost" → "_wildcard.app.localhost", "::1" → "__1". */
function fileBase (host: string): string {
  return host.replace(/^\*\./, '_wildcard.').replace(/[^a-z0-9._-]/g, '_')
}

/**
 * What `portico cert --dev` prints: the files, the validity, and a config snippet for a TLS listener using them.
 * Paths under `cwd` are shown relative to it (config paths are relative to the config file's directory).
 */
export function describeDevCertificate (files: DevCertificateFiles, cwd = process.cwd()): string {
  const show = (p: string): string => {
    const rel = path.relative(cwd, p)
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? `./${rel.split(path.sep).join('/')}` : p
  }
  // Certificate host keys bracket IPv6 literals, as route host keys do.
  const keys = files.hosts.map((h) => JSON.stringify(isIP(h) === 6 ? `[${h}]` : h))
  return [
    `certificate: ${files.cert}`,
    `key:         ${files.key}`,
    `hosts:       ${files.hosts.join(', ')}`,
    `valid until: ${files.notAfter.toISOString()}`,
    '',
    'Self-signed, for development only: clients trust it once it is added to their trust store',
    `(curl: --cacert ${show(files.cert)}).`,
    '',
    'In portico.yaml:',
    '',
    'listen:',
    '  - { port: 8443, tls: true }',
    'tls:',
    '  certificates:',
    `    - hosts: [${keys.join(', ')}]`,
    `      cert: ${show(files.cert)}`,
    `      key: ${show(files.key)}`,
    ''
  ].join('\n')
}
