/**
 * ACME Renewal Information (acme/renewal-info.ts): the ARI certificate identifier of RFC 9773 §4.1, checked on a
 * certificate with the RFC's example authority key identifier and serial (made with openssl for this test), and the
 * random renewal time inside a window.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ariCertId, renewalTime } from '../../src/acme/renewal-info.js'

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
