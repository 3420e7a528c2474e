/**
 * ACME Renewal Information (acme/renewal-info.ts): the ARI certificate identifier of RFC 9773 §4.1, checked on a
 * certificate with the RFC's example authority key identifier and serial (made with openssl for this test), the
 * random renewal time inside a window, and the window fetched from a loopback HTTPS server with its Retry-After.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ariCertId, fetchRenewalInfo, renewalTime, renewBy } from '../../src/acme/renewal-info.js'

/** AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x87654321 (RFC 9773's example). */
const RFC_EXAMPLE = `
-----BEGIN CERTIFICATE-----
MIIBYTCCAQegAwIBAgIFAIdlQyEwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLZXhh
bXBsZS5jb20wHhcNMjYxMjA1MjExNjUzWhcNMjYxMjA2MjExNjUzWjAWMRQwEgYD
VQQDDAtleGFtcGxlLmNvbTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABDlb2kxi
M4LPdnSoqTtW80aGP/2Fvcnz1+PHRtp4VWrxCGAeo2Rn68W3XToR1wDm8eyePvGW
T/xJ+yeIHY1yaP+jQjBAMB0GA1UdDgQWBBRpiFtrh0ZAQeGze4R7oK4s3gHI1DAf
BgNVHSMEGDAWgBRpiFtrh0ZAQeGze4R7oK4s3gHI1DAKBggqhkjOPQQDAgNIADBF
AiEAsAGVBpV0CnErycgezzrCYAThnl4WbTSiptY8SGZJfCkCIAssWLlRklVCF7+f
Nbni9KxcXO1Lt21R7efoCeAlWSYg
-----END CERTIFICATE-----
`
/** Serial 0x0123 and no authority key identifier. */
const NO_AKI = `
-----BEGIN CERTIFICATE-----
MIIBKDCBz6ADAgECAgIBIzAKBggqhkjOPQQDAjAWMRQwEgYDVQQDDAtleGFtcGxl
LmNvbTAeFw0yNjEyMDUyMTE2NTVaFw0yNjEyMDYyMTE2NTVaMBYxFDASBgNVBAMM
C2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOVvaTGIzgs92
dKipO1bzRoY//YW9yfPX48dG2nhVavEIYB6jZGfrxbddOhHXAObx7J4+8ZZP/En7
J4gdjXJo/6MNMAswCQYDVR0TBAIwADAKBggqhkjOPQQDAgNIADBFAiEA4E7okDe6
koBlXoi31z2wTjLdS7TnsiQLQYuw2iPt7CcCIDb66T9zlHCFdRgttKFjkK+F+i0t
1cK+I51acFC9C6Yl
-----END CERTIFICATE-----
`

test('the ARI identifier is the base64url key identifier and DER serial, a zero byte kept before a high bit', () => {
  // The identifier RFC 9773 §4.1 gives for this key identifier and serial.
  assert.equal(ariCertId(RFC_EXAMPLE), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE')
  // Without an authority key identifier the CA cannot be asked.
  assert.equal(ariCertId(NO_AKI), null)
})

test('the renewal time is drawn uniformly from inside the window', () => {
  const info = { start: 1_000_000, end: 2_000_000, explanationURL: null, retryAfterMs: 60_000 }
  const times = Array.from({ length: 2000 }, () => renewalTime(info))
  assert.ok(times.every((t) => t >= info.start && t < info.end))
  // Spread over the window, not bunched at one end: each quarter gets a fair share.
  for (let q = 0; q < 4; q++) {
    const n = times.filter((t) => t >= info.start + q * 250_000 && t < info.start + (q + 1) * 250_000).length
    assert.ok(n > 350 && n < 650, `quarter ${q}: ${n} of 2000`)
  }
})

test('a renewal window is fetched over HTTPS; Retry-After is kept between a minute and a day; a bad window is refused', async (t) => {
  const { generate } = await import('selfsigned')
  const https = await import('node:https')
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec', curve: 'P-256', algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }]
  })
  const answers = new Map<string, { status: number, body: unknown, retryAfter?: string }>()
  const server = https.createServer({ cert: pems.cert, key: pems.private }, (req, res) => {
    const a = answers.get((req.url ?? '').split('/').pop() ?? '')
    if (a === undefined) return res.writeHead(404).end()
    res.writeHead(a.status, { 'content-type': 'application/json', ...(a.retryAfter === undefined ? {} : { 'retry-after': a.retryAfter }) })
    res.end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const base = `https://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/renewal-info`
  const ca = Buffer.from(pems.cert)
  const window = { suggestedWindow: { start: '2027-01-01T00:00:00Z', end: '2027-01-03T00:00:00Z' } }
  const hour = 60 * 60 * 1000

  answers.set('a', { status: 200, body: { ...window, explanationURL: 'https://ca.example/why' }, retryAfter: '21600' })
  assert.deepEqual(await fetchRenewalInfo(base, 'a', ca), {
    start: Date.parse('2027-01-01T00:00:00Z'), end: Date.parse('2027-01-03T00:00:00Z'), explanationURL: 'https://ca.example/why', retryAfterMs: 6 * hour
  })
  // Retry-After: too soon becomes a minute, too late a day, an HTTP-date counts from now, none means six hours.
  answers.set('soon', { status: 200, body: window, retryAfter: '5' })
  assert.equal((await fetchRenewalInfo(base, 'soon', ca)).retryAfterMs, 60_000)
  answers.set('late', { status: 200, body: window, retryAfter: String(7 * 24 * 3600) })
  assert.equal((await fetchRenewalInfo(base, 'late', ca)).retryAfterMs, 24 * hour)
  answers.set('date', { status: 200, body: window, retryAfter: new Date(Date.now() + 2 * hour).toUTCString() })
  const dated = (await fetchRenewalInfo(base, 'date', ca)).retryAfterMs
  assert.ok(dated > 1.9 * hour && dated <= 2 * hour, String(dated))
  answers.set('none', { status: 200, body: window })
  assert.equal((await fetchRenewalInfo(base, 'none', ca)).retryAfterMs, 6 * hour)
  // A window that ends before it starts, a body that is not JSON, or an error status: no window (renewBefore rules).
  answers.set('inverted', { status: 200, body: { suggestedWindow: { start: '2027-01-03T00:00:00Z', end: '2027-01-01T00:00:00Z' } } })
  await assert.rejects(fetchRenewalInfo(base, 'inverted', ca), /no valid suggestedWindow/)
  answers.set('text', { status: 200, body: 'not json' })
  await assert.rejects(fetchRenewalInfo(base, 'text', ca), /no valid suggestedWindow/)
  await assert.rejects(fetchRenewalInfo(base, 'missing', ca), /answered 404/)
  // Without the CA's root the fetch fails (the system's roots do not include it).
  await assert.rejects(fetchRenewalInfo(base, 'a', null))
})

test('renewBefore: as set, or by default 30 days or a third of a shorter certificate\'s lifetime', () => {
  const day = 24 * 60 * 60 * 1000
  const cert = (days: number): { notBefore: Date, notAfter: Date } => ({ notBefore: new Date(0), notAfter: new Date(days * day) })
  const byDefault = { renewBefore: 30 * day, renewBeforeSet: false }
  assert.equal(renewBy(cert(90), byDefault), 60 * day)
  assert.equal(renewBy(cert(45), byDefault), 30 * day, 'a 45-day certificate: 15 days before expiry')
  assert.equal(renewBy(cert(6), byDefault), 4 * day, 'a 6-day certificate: 2 days before expiry')
  // A value the config sets is taken as given, even past the lifetime (renewed at once, at most every 12 hours).
  assert.equal(renewBy(cert(6), { renewBefore: 30 * day, renewBeforeSet: true }), -24 * day)
  assert.equal(renewBy(cert(90), { renewBefore: 10 * day, renewBeforeSet: true }), 80 * day)
})
