/**
 * Where automatic HTTPS keeps its state on disk: the ACME account key (`account-key.pem`) and, per name,
 * `certificates/NAME/certificate.pem` (the chain) and `certificates/NAME/key.pem`. Private keys are written with
 * mode 0600, every file by writing a temporary file and renaming it over the old one, so a reader never sees half.
 */
import { X509Certificate } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'

/** A stored certificate, with what its leaf says. */
export interface StoredCertificate {
  cert: string
  key: string
  notAfter: Date
  issuer: string
}

export class AcmeDiskStorage {
  readonly dir: string

  constructor (dir: string) {
    this.dir = dir
  }

  /** The account key (PEM), or null when there is none yet. */
  accountKey (): string | null {
    return readOrNull(path.join(this.dir, 'account-key.pem'))
  }

  saveAccountKey (pem: string): void {
    writeAtomically(path.join(this.dir, 'account-key.pem'), pem, 0o600)
  }

  /** The stored certificate for `name`, or null when there is none (or it does not parse). */
  certificate (name: string): StoredCertificate | null {
    const dir = this.#nameDir(name)
    const cert = readOrNull(path.join(dir, 'certificate.pem'))
    const key = readOrNull(path.join(dir, 'key.pem'))
    if (cert === null || key === null) return null
    try {
      const leaf = new X509Certificate(cert)
      return { cert, key, notAfter: new Date(leaf.validTo), issuer: issuerName(leaf) }
    } catch {
      return null
    }
  }

  /** Stores a certificate and its key for `name`: the key first, so a certificate on disk always has its key. */
  saveCertificate (name: string, cert: string, key: string): void {
    const dir = this.#nameDir(name)
    writeAtomically(path.join(dir, 'key.pem'), key, 0o600)
    writeAtomically(path.join(dir, 'certificate.pem'), cert, 0o644)
  }

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
