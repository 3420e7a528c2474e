/**
 * The TLS part of the meaning pass: reads the certificate, key and CA files a config names (relative to the config
 * file), takes passphrases from the environment, and checks that each certificate and key load together, so a bad
 * file is a config error at start rather than a failed handshake at the first request.
 */
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import { isIssuableName, normalizeHostKey } from '../routing/host.js'
import type { UpstreamTls } from '../upstream/types.js'
import { DEFAULTS } from './defaults.js'
import { parseRate } from './resolve-rules.js'
import type { ConfigIssue, ResolvedAcme, ResolvedCertificate, ResolvedTls } from './resolved.js'
import type { ParsedConfig, ParsedUpstream } from './schema.js'

type UpstreamTlsConfig = Extract<ParsedUpstream, { tls?: unknown }>['tls']

function readFileIssue (file: string, baseDir: string, at: (string | number)[], issues: ConfigIssue[]): Buffer | undefined {
  try {
    return readFileSync(path.resolve(baseDir, file))
  } catch (err) {
    issues.push({ path: at, message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, value: file })
    return undefined
  }
}

function passphraseFrom (env: string | undefined, at: (string | number)[], issues: ConfigIssue[]): string | undefined {
  if (env === undefined) return undefined
  const value = process.env[env]
  if (value === undefined) issues.push({ path: at, message: `environment variable ${env} is not set`, value: env })
  return value
}

/** Client-side TLS for an upstream's https:// nodes, files read. Certificates are verified unless told otherwise. */
export function resolveUpstreamTls (t: UpstreamTlsConfig, baseDir: string, at: (string | number)[], issues: ConfigIssue[]): UpstreamTls {
  if (t === undefined) return { rejectUnauthorized: !DEFAULTS['routes.upstream.tls.insecureSkipVerify'] }
  const out: UpstreamTls = { rejectUnauthorized: !(t.insecureSkipVerify ?? DEFAULTS['routes.upstream.tls.insecureSkipVerify']) }
  if (t.ca !== undefined) {
    const list = Array.isArray(t.ca) ? t.ca : [t.ca]
    out.ca = list.map((f, i) => readFileIssue(f, baseDir, Array.isArray(t.ca) ? [...at, 'ca', i] : [...at, 'ca'], issues)).filter((b): b is Buffer => b !== undefined)
  }
  if (t.serverName !== undefined) out.servername = t.serverName
  if ((t.cert === undefined) !== (t.key === undefined)) issues.push({ path: at, message: 'a client certificate needs both cert and key' })
  if (t.cert !== undefined) out.cert = readFileIssue(t.cert, baseDir, [...at, 'cert'], issues)
  if (t.key !== undefined) out.key = readFileIssue(t.key, baseDir, [...at, 'key'], issues)
  const passphrase = passphraseFrom(t.passphraseEnv, [...at, 'passphraseEnv'], issues)
  if (passphrase !== undefined) out.passphrase = passphrase
  // A key that does not decrypt or match would otherwise fail every connection as a 502; say so at load time.
  if (out.cert !== undefined && out.key !== undefined && (t.passphraseEnv === undefined || passphrase !== undefined)) {
    try {
      createSecureContext({ cert: out.cert, key: out.key, passphrase })
    } catch (err) {
      issues.push({ path: [...at, 'key'], message: `client certificate and key do not load: ${(err as Error).message}`, value: t.key })
    }
  }
  return out
}

/** Server certificates for TLS listeners, paths made absolute (the certificate store reads and watches them). */
export function resolveServerTls (cfg: ParsedConfig, baseDir: string, routeHosts: readonly string[], issues: ConfigIssue[]): ResolvedTls | null {
  if (cfg.tls === undefined) return null
  if (cfg.tls.certificates === undefined && cfg.tls.acme === undefined) issues.push({ path: ['tls'], message: 'expected tls.certificates, tls.acme or both' })
  const certificates: ResolvedCertificate[] = []
  ;(cfg.tls.certificates ?? []).forEach((c, i) => {
    const at = ['tls', 'certificates', i]
    const hosts: string[] = []
    c.hosts.forEach((h, j) => {
      const r = normalizeHostKey(h)
      if ('error' in r || r.key === '*' || (r.key.endsWith('.') && !r.key.startsWith('*.'))) issues.push({ path: [...at, 'hosts', j], message: 'expected a host name or "*.example.com"', value: h })
      else hosts.push(r.key)
    })
    const cert = readFileIssue(c.cert, baseDir, [...at, 'cert'], issues)
    const key = readFileIssue(c.key, baseDir, [...at, 'key'], issues)
    const passphrase = passphraseFrom(c.passphraseEnv, [...at, 'passphraseEnv'], issues)
    if (cert !== undefined && key !== undefined) {
      try {
        createSecureContext({ cert, key, passphrase })
      } catch (err) {
        issues.push({ path: at, message: `certificate and key do not load: ${(err as Error).message}` })
      }
    }
    certificates.push({ hosts, certFile: path.resolve(baseDir, c.cert), keyFile: path.resolve(baseDir, c.key), passphrase, default: c.default ?? false })
  })
  const acme = cfg.tls.acme === undefined ? null : resolveAcme(cfg.tls.acme, baseDir, routeHosts, certificates.flatMap((c) => c.hosts), issues)
  return { certificates, acme, minVersion: cfg.tls.minVersion ?? DEFAULTS['tls.minVersion'], ciphers: cfg.tls.ciphers, watch: cfg.tls.watch ?? DEFAULTS['tls.watch'] }
}

/** The ACME directories known by name (RFC 8555 §7.1.1). */
const DIRECTORIES: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory'
}

type AcmeConfig = NonNullable<NonNullable<ParsedConfig['tls']>['acme']>

/**
 * Automatic HTTPS: the names to manage are `hosts`, else every exact host name of the routes. Wildcards and prefix
 * keys need DNS-01, which Portico does not do: they are left to `tls.certificates` (docs/acme.md).
 */
function resolveAcme (a: AcmeConfig, baseDir: string, routeHosts: readonly string[], fileHosts: readonly string[], issues: ConfigIssue[]): ResolvedAcme {
  const at = ['tls', 'acme']
  const hosts: string[] = []
  if (a.hosts !== undefined) {
    a.hosts.forEach((h, i) => {
      const r = normalizeHostKey(h)
      if ('error' in r || !isIssuableName(r.key)) issues.push({ path: [...at, 'hosts', i], message: 'expected an exact host name (wildcards need DNS-01, which Portico does not do)', value: h })
      else if (!hosts.includes(r.key)) hosts.push(r.key)
    })
  } else {
    for (const h of routeHosts) if (isIssuableName(h) && !hosts.includes(h)) hosts.push(h)
  }
  const directory = a.directory ?? DEFAULTS['tls.acme.directory']
  return {
    email: a.email,
    directoryUrl: DIRECTORIES[directory] ?? directory,
    challenges: a.challenges ?? [...DEFAULTS['tls.acme.challenges']],
    storage: a.storage !== undefined && 'redis' in a.storage
      ? { redis: { url: a.storage.redis.url, prefix: a.storage.redis.prefix ?? DEFAULTS['tls.acme.storage.redis.prefix'] } }
      : { dir: path.resolve(baseDir, a.storage?.dir ?? DEFAULTS['tls.acme.storage.dir']) },
    renewBefore: a.renewBefore ?? DEFAULTS['tls.acme.renewBefore'],
    renewBeforeSet: a.renewBefore !== undefined,
    hosts,
    unmanaged: [...new Set(routeHosts)].filter((h) => (h.startsWith('*.') || h.endsWith('.')) && !fileHosts.includes(h)),
    ca: a.ca === undefined ? null : readFileIssue(a.ca, baseDir, [...at, 'ca'], issues) ?? null,
    pending: a.pending ?? DEFAULTS['tls.acme.pending'],
    onDemand: a.onDemand === undefined
      ? null
      : {
          ask: a.onDemand.ask,
          rate: parseRate(a.onDemand.rateLimit ?? DEFAULTS['tls.acme.onDemand.rateLimit']),
          maxConcurrent: a.onDemand.maxConcurrent ?? DEFAULTS['tls.acme.onDemand.maxConcurrent']
        }
  }
}

