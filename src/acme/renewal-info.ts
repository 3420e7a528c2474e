/**
 * ACME Renewal Information (RFC 9773): a CA that offers `renewalInfo` in its directory says, per certificate, the
 * window in which it would like it renewed (earlier than usual before a revocation, spread out to avoid load
 * spikes). The certificate is named by its ARI identifier (§4.1: the authority key identifier and the serial
 * number, each base64url); the window is fetched with an unauthenticated GET and fetched again after its
 * Retry-After. The manager (manager.ts) renews at a random time inside the window, or at `renewBefore`, whichever
 * comes first, and names the certificate it replaces in the new order (§5).
 */
import { X509Certificate } from 'node:crypto'
import { Agent, undiciRequest } from '../upstream/undici.js'

/** How long a fetched window holds when the CA sends no usable Retry-After (the RFC suggests six hours). */
const DEFAULT_RETRY_AFTER_MS = 6 * 60 * 60 * 1000
/** Retry-After is kept within these bounds: not polled more than once a minute, nor less than once a day. */
const MIN_RETRY_AFTER_MS = 60 * 1000
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000
/** How long the CA may leave a request without its head, or its body without a byte. */
const TIMEOUT_MS = 10_000
/** The largest directory or renewal-window answer read. */
const MAX_BODY = 64 * 1024

/** A CA's suggested renewal window for one certificate. */
export interface RenewalInfo {
  start: number
  end: number
  /** A page that explains the window (a revocation notice, say), when the CA gives one. */
  explanationURL: string | null
  /** When to ask again. */
  retryAfterMs: number
}

/** The certificate's ARI identifier (RFC 9773 §4.1), or null when it has no authority key identifier. */
export function ariCertId (pem: string): string | null {
  const ids = identifiers(new X509Certificate(pem).raw)
  return ids === null ? null : `${ids.aki.toString('base64url')}.${ids.serial.toString('base64url')}`
}

/** One DER TLV: its tag, where its content starts and ends. */
interface Tlv { tag: number, start: number, end: number }

function tlv (der: Buffer, at: number): Tlv {
  const tag = der[at]
  let len = der[at + 1]
  let start = at + 2
  if (len >= 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4) throw new RangeError('DER length')
    len = der.readUIntBE(at + 2, n)
    start += n
  }
  if (start + len > der.length) throw new RangeError('DER overrun')
  return { tag, start, end: start + len }
}

function children (der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = []
  for (let at = parent.start; at < parent.end;) {
    const t = tlv(der, at)
    out.push(t)
    at = t.end
  }
  return out
}

/** id-ce-authorityKeyIdentifier (2.5.29.35), as DER OID content. */
const AKI_OID = Buffer.from([0x55, 0x1d, 0x23])

/**
 * What the ARI identifier is made of: the keyIdentifier of the authority key identifier extension (RFC 5280
 * §4.2.1.1) and the serial number's DER content octets (as encoded, leading zero included); null without an AKI.
 */
function identifiers (der: Buffer): { aki: Buffer, serial: Buffer } | null {
  try {
    const tbs = children(der, children(der, tlv(der, 0))[0])
    // TBSCertificate: [0] version (absent for v1), serialNumber INTEGER, ..., [3] extensions last.
    const serial = tbs.find((t) => t.tag === 0x02)
    const explicit = tbs.find((t) => t.tag === 0xa3)
    if (serial === undefined || explicit === undefined) return null
    for (const ext of children(der, children(der, explicit)[0])) {
      const parts = children(der, ext)
      if (parts[0].tag !== 0x06 || !der.subarray(parts[0].start, parts[0].end).equals(AKI_OID)) continue
      const value = parts[parts.length - 1]
      const keyId = children(der, tlv(der, value.start)).find((t) => t.tag === 0x80)
      if (keyId === undefined) return null
      return { aki: Buffer.from(der.subarray(keyId.start, keyId.end)), serial: Buffer.from(der.subarray(serial.start, serial.end)) }
    }
  } catch {
    return null
  }
  return null
}

/**
 * When a certificate is due by `renewBefore` alone: that long before it expires; with `renewBefore` not set
 * (the 30-day default), a third of its lifetime before when that is shorter, so that short-lived certificates
 * (Let's Encrypt's 6-day and 45-day ones) are not renewed soon after issue.
 */
export function renewBy (c: { notBefore: Date, notAfter: Date }, settings: { renewBefore: number, renewBeforeSet: boolean }): number {
  const lifetime = c.notAfter.getTime() - c.notBefore.getTime()
  return c.notAfter.getTime() - (settings.renewBeforeSet ? settings.renewBefore : Math.min(settings.renewBefore, lifetime / 3))
}

/** A uniformly random time in the window (§4.2), so that the CA's subscribers do not all renew at its start. */
export function renewalTime (info: RenewalInfo): number {
  return info.start + Math.random() * Math.max(0, info.end - info.start)
}

/** Fetches a certificate's renewal window from the CA's `renewalInfo` resource; throws on any failure. */
export async function fetchRenewalInfo (renewalInfoUrl: string, certId: string, ca: Buffer | null): Promise<RenewalInfo> {
  const res = await getJson(`${renewalInfoUrl.replace(/\/$/, '')}/${certId}`, ca)
  if (res.status !== 200) throw new Error(`renewalInfo answered ${res.status}`)
  const body = res.body as { suggestedWindow?: { start?: unknown, end?: unknown }, explanationURL?: unknown } | null
  const start = Date.parse(String(body?.suggestedWindow?.start))
  const end = Date.parse(String(body?.suggestedWindow?.end))
  // §4.2: a window whose end is not after its start is invalid, and treated as if none was given.
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) throw new Error('renewalInfo has no valid suggestedWindow')
  return {
    start,
    end,
    explanationURL: typeof body?.explanationURL === 'string' ? body.explanationURL : null,
    retryAfterMs: retryAfter(res.retryAfter)
  }
}

/** Retry-After (delay-seconds or an HTTP-date), kept within a minute and a day. */
function retryAfter (value: string | undefined): number {
  if (value === undefined) return DEFAULT_RETRY_AFTER_MS
  const ms = /^\d+$/.test(value.trim()) ? Number(value.trim()) * 1000 : Date.parse(value) - Date.now()
  if (!Number.isFinite(ms)) return DEFAULT_RETRY_AFTER_MS
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, ms))
}

/** The `renewalInfo` URL of an ACME directory, or null when the CA does not offer ARI. */
export async function renewalInfoUrl (directoryUrl: string, ca: Buffer | null): Promise<string | null> {
  const res = await getJson(directoryUrl, ca)
  if (res.status !== 200) throw new Error(`the ACME directory answered ${res.status}`)
  const url = (res.body as { renewalInfo?: unknown } | null)?.renewalInfo
  return typeof url === 'string' && url.startsWith('https://') ? url : null
}

/** GET `url` as JSON through undici (trusting `ca` when given): status, parsed body (null when not JSON), Retry-After. */
async function getJson (url: string, ca: Buffer | null): Promise<{ status: number, body: unknown, retryAfter: string | undefined }> {
  const request = await undiciRequest()
  const dispatcher = ca === null ? undefined : new Agent({ connect: { ca } })
  try {
    const res = await request(url, { dispatcher, headers: { accept: 'application/json' }, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS })
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of res.body) {
      size += (c as Buffer).length
      if (size > MAX_BODY) {
        res.body.destroy()
        throw new Error(`${url}: answer larger than ${MAX_BODY / 1024} KiB`)
      }
      chunks.push(c as Buffer)
    }
    let body: unknown = null
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    } catch {
      // Not JSON: the caller reports the missing fields.
    }
    const ra = res.headers['retry-after']
    return { status: res.statusCode, body, retryAfter: Array.isArray(ra) ? ra[0] : ra }
  } finally {
    await dispatcher?.close()
  }
}
