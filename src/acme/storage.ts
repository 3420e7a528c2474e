/**
 * Where automatic HTTPS keeps its state (`tls.acme.storage`): the ACME account key, a certificate and key per name,
 * a lock per name (so that of the instances sharing a storage one orders each name) and, shared between instances,
 * the answers to pending challenges (HTTP-01 by token, TLS-ALPN-01 by name: a CA's request may reach any of them). On disk: `account-key.pem`,
 * `certificates/NAME/certificate.pem` and `key.pem` (keys mode 0600, every file written to a temporary name and
 * renamed, so a reader never sees half) and `locks/NAME.lock`. In Redis: acme/storage-redis.ts.
 */
import { X509Certificate, randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'

/** A stored certificate, with what its leaf says. */
export interface StoredCertificate {
  cert: string
  key: string
  notBefore: Date
  notAfter: Date
  issuer: string
}

/** What the manager needs of a storage. */
export interface AcmeStorage {
  /** For logs: the directory or the Redis URL and prefix. */
  readonly where: string
  /** True when other instances may share it (challenge answers and locks matter). */
  readonly shared: boolean
  accountKey (): Promise<string | null>
  saveAccountKey (pem: string): Promise<void>
  certificate (name: string): Promise<StoredCertificate | null>
  saveCertificate (name: string, cert: string, key: string): Promise<void>
  /** Takes the lock on ordering `name` for `ttlMs` (a stale lock expires); a release function, or null when held elsewhere. */
  lock (name: string, ttlMs: number): Promise<(() => Promise<void>) | null>
  /** A pending challenge's key authorization, by `key` (an HTTP-01 token, or tls-alpn-01.ts tlsAlpnKey of a name). */
  setChallenge (key: string, keyAuthorization: string, ttlMs: number): Promise<void>
  challenge (key: string): Promise<string | null>
  deleteChallenge (key: string): Promise<void>
  close (): Promise<void>
}

/** A certificate and key as stored, with what the leaf says; null when it does not parse. */
export function parseStored (cert: string, key: string): StoredCertificate | null {
  try {
    const leaf = new X509Certificate(cert)
    return { cert, key, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo), issuer: issuerName(leaf) }
  } catch {
    return null
  }
}

export class AcmeDiskStorage implements AcmeStorage {
  readonly dir: string
  readonly where: string
  /** One machine: instances sharing the directory would need the challenge answers too; they are kept in memory. */
  readonly shared = false

  constructor (dir: string) {
    this.dir = dir
    this.where = dir
  }

  async accountKey (): Promise<string | null> {
    return readOrNull(path.join(this.dir, 'account-key.pem'))
  }

  async saveAccountKey (pem: string): Promise<void> {
    writeAtomically(path.join(this.dir, 'account-key.pem'), pem, 0o600)
  }

  async certificate (name: string): Promise<StoredCertificate | null> {
    const dir = this.#nameDir(name)
    const cert = readOrNull(path.join(dir, 'certificate.pem'))
    const key = readOrNull(path.join(dir, 'key.pem'))
    return cert === null || key === null ? null : parseStored(cert, key)
  }

  /** Stores a certificate and its key for `name`: the key first, so a certificate on disk always has its key. */
  async saveCertificate (name: string, cert: string, key: string): Promise<void> {
    const dir = this.#nameDir(name)
    writeAtomically(path.join(dir, 'key.pem'), key, 0o600)
    writeAtomically(path.join(dir, 'certificate.pem'), cert, 0o644)
  }

  /** A lock file made with O_EXCL, holding its expiry; an expired one is taken over. */
  async lock (name: string, ttlMs: number): Promise<(() => Promise<void>) | null> {
    const file = path.join(this.dir, 'locks', `${name}.lock`)
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
    const token = randomBytes(8).toString('hex')
    const body = `${Date.now() + ttlMs} ${token}`
    try {
      writeFileSync(file, body, { flag: 'wx', mode: 0o600 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const held = readOrNull(file)
      if (held !== null && Number(held.split(' ')[0]) > Date.now()) return null
      writeAtomically(file, body, 0o600)
    }
    return async () => {
      if (readOrNull(file)?.endsWith(token) === true) rmSync(file, { force: true })
    }
  }

  async setChallenge (): Promise<void> {}
  async challenge (): Promise<string | null> { return null }
  async deleteChallenge (): Promise<void> {}
  async close (): Promise<void> {}

  #nameDir (name: string): string {
    // Names are validated host names (letters, digits, dots, hyphens): safe as directory names.
    return path.join(this.dir, 'certificates', name)
  }
}

/** The leaf's issuer, as its CN (or the whole DN). */
export function issuerName (leaf: X509Certificate): string {
  return /(?:^|\n)CN=([^\n]+)/.exec(leaf.issuer)?.[1] ?? leaf.issuer.replace(/\n/g, ', ')
}

function readOrNull (file: string): string | null {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

function writeAtomically (file: string, text: string, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, text, { mode })
  chmodSync(tmp, mode)
  renameSync(tmp, file)
}

/** The storage `tls.acme.storage` names; the Redis one (and ioredis) is loaded only when configured. */
export async function openAcmeStorage (storage: { dir: string } | { redis: { url: string, prefix: string } }): Promise<AcmeStorage> {
  if ('dir' in storage) return new AcmeDiskStorage(storage.dir)
  const { AcmeRedisStorage } = await import('./storage-redis.js')
  return new AcmeRedisStorage(storage.redis.url, storage.redis.prefix)
}
