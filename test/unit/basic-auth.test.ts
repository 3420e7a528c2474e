/**
 * Basic authentication primitives: the user list parser (both forms, each refusal with its line), the scrypt and
 * bcrypt hashes (round trips and published test vectors, so the format is plain scrypt/bcrypt), and
 * `BasicAuth.check`'s three answers (user, null, 'malformed') for the header values RFC 7617 and RFC 9110 describe.
 * The hashes for `check` are made here with low costs (scryptSync, bcryptjs cost 4) to keep the file quick.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, scryptSync } from 'node:crypto'
import bcrypt from 'bcryptjs'
import { BasicAuth, MAX_AUTHORIZATION_LENGTH, UserListError, hashPassword, parseUsers, verifyPassword } from '../../src/rules/basic-auth.js'

/** A scrypt hash in Portico's format, with a low cost. */
function cheapScrypt (password: string, ln = 4): string {
  const salt = randomBytes(16)
  const key = scryptSync(password.normalize('NFC'), salt, 32, { N: 2 ** ln, r: 8, p: 1 })
  const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '')
  return `$scrypt$ln=${ln},r=8,p=1$${b64(salt)}$${b64(key)}`
}

function basic (userPass: string | Buffer): string {
  return `Basic ${Buffer.from(userPass).toString('base64')}`
}

const ALICE = cheapScrypt('wonderland')
const BOB = bcrypt.hashSync('builder', 4)
const CAROL = cheapScrypt('пароль✓ with spaces: and colons')

test('parseUsers reads htpasswd-style text: comments, blank lines, CRLF, surrounding whitespace', () => {
  const text = `# users\r\n\r\nalice:${ALICE}\r\n   # indented comment\n  bob:${BOB}  \n\n`
  assert.deepEqual(parseUsers(text), [{ name: 'alice', hash: ALICE }, { name: 'bob', hash: BOB }])
  assert.deepEqual(parseUsers(''), [])
})

test('parseUsers reads a list of "name:hash" strings', () => {
  assert.deepEqual(parseUsers([`alice:${ALICE}`, `bob:${BOB}`]), [{ name: 'alice', hash: ALICE }, { name: 'bob', hash: BOB }])
  assert.deepEqual(parseUsers([]), [])
})

test('parseUsers accepts $2a$, $2b$ and $2y$ bcrypt and Portico scrypt', () => {
  const y = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'
  const a = bcrypt.hashSync('x', bcrypt.genSaltSync(4).replace('$2b$', '$2a$'))
  assert.ok(a.startsWith('$2a$04$'))
  assert.equal(parseUsers([`y:${y}`, `a:${a}`, `b:${BOB}`, `s:${ALICE}`]).length, 4)
})

test('parseUsers refuses each bad entry, naming its 1-based line', () => {
  const bad = (input: string | string[], line: number, pattern: RegExp): void => {
    assert.throws(() => parseUsers(input), (err: unknown) => {
      assert.ok(err instanceof UserListError)
      assert.equal(err.line, line)
      assert.match(err.message, new RegExp(`^${typeof input === 'string' ? 'line' : 'entry'} ${line}: `))
      assert.match(err.message, pattern)
      return true
    })
  }
  bad(`# c\nalice:${ALICE}\nbob`, 3, /no ":"/)
  bad(['bob'], 1, /no ":"/)
  bad(`\n:${ALICE}`, 2, /empty user name/)
  bad(`alice:${ALICE}\n#\nalice:${BOB}`, 3, /duplicate user "alice"/)
  bad([`alice:${ALICE}`, `alice:${BOB}`], 2, /duplicate/)
  bad(['caf\u00e9:' + ALICE, 'cafe\u0301:' + BOB], 2, /duplicate/) // the same name after NFC
  bad(['a\u0001b:' + ALICE], 1, /control character/)
  bad('alice:', 1, /plain-text/)
  bad(`alice:${ALICE}\nbob:`, 2, /plain-text/)
})

test('parseUsers refuses plain text, MD5, SHA-1 and crypt hashes, pointing to portico hash-password, without echoing them', () => {
  const refused: Array<[string, RegExp]> = [
    ['correct horse battery staple', /plain-text/],
    ['$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/', /MD5/],
    ['$1$saltsalt$qjXMvbEw8oaL.CzflDugX/', /MD5/],
    ['{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', /SHA-1/],
    ['$5$rounds=5000$salt$abc', /SHA-crypt/],
    ['$6$salt$abc', /SHA-crypt/],
    ['rl0A1bV3hQdIo', /crypt \(DES\)/],
    ['$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', /unsupported/],
    ['$2x$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a', /not a valid bcrypt/],
    ['$2b$10$tooshort', /not a valid bcrypt/],
    ['$2b$03$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a', /not a valid bcrypt/],
    ['$scrypt$ln=15,r=8,p=1$onlysalt', /not a valid scrypt/],
    ['$scrypt$ln=30,r=8,p=1$U29kaXVtQ2hsb3JpZGU$U29kaXVtQ2hsb3JpZGVTb2RpdW1DaGxvcmlkZQ', /out of range/],
    ['$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU=$U29kaXVtQ2hsb3JpZGVTb2RpdW1DaGxvcmlkZQ', /not a valid scrypt/],
    ['$scrypt$ln=14,r=8,p=1$c2FsdA$U29kaXVtQ2hsb3JpZGVTb2RpdW1DaGxvcmlkZQ', /salt must be/]
  ]
  for (const [hash, pattern] of refused) {
    assert.throws(() => parseUsers(`u:${hash}`), (err: Error) => {
      assert.match(err.message, pattern, hash)
      assert.match(err.message, /portico hash-password/, hash)
      assert.ok(!err.message.includes(hash), `the message does not repeat ${hash}`)
      return true
    })
  }
})

test('hashPassword/verifyPassword round-trip with scrypt (the default) and bcrypt; a wrong password is false', async () => {
  const s = await hashPassword('correct horse ✓')
  assert.match(s, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
  assert.equal(await verifyPassword('correct horse ✓', s), true)
  assert.equal(await verifyPassword('correct horse', s), false)
  assert.notEqual(await hashPassword('correct horse ✓'), s, 'a fresh salt each time')
  const b = await hashPassword('correct horse ✓', 'bcrypt')
  assert.match(b, /^\$2b\$12\$[./A-Za-z0-9]{53}$/)
  assert.equal(await verifyPassword('correct horse ✓', b), true)
  assert.equal(await verifyPassword('correct horse ✗', b), false)
  assert.equal(parseUsers([`u:${s}`, `v:${b}`]).length, 2, 'parseUsers accepts what hashPassword writes')
})

test('the hashes are plain scrypt (RFC 7914 vector) and bcrypt (a $2y$ hash from PHP)', async () => {
  const key = '7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887'
  const vector = `$scrypt$ln=14,r=8,p=1$U29kaXVtQ2hsb3JpZGU$${Buffer.from(key, 'hex').toString('base64').replace(/=+$/, '')}`
  assert.equal(await verifyPassword('pleaseletmein', vector), true)
  assert.equal(await verifyPassword('pleaseletmeout', vector), false)
  const php = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'
  assert.equal(await verifyPassword('rasmuslerdorf', php), true)
  assert.equal(await verifyPassword('rasmuslerdorF', php), false)
})

test('passwords are NFC-normalised: composed and decomposed forms verify alike', async () => {
  const hash = cheapScrypt('caf\u00e9')
  assert.equal(await verifyPassword('cafe\u0301', hash), true)
  assert.equal(await verifyPassword('caf\u00e9', await hashPassword('cafe\u0301', 'bcrypt')), true)
})

test('hashPassword refuses an empty password, a bcrypt password over 72 bytes; verifyPassword refuses an unknown hash kind', async () => {
  await assert.rejects(hashPassword(''), RangeError)
  await assert.rejects(hashPassword('x'.repeat(73), 'bcrypt'), /72 bytes/)
  await assert.rejects(verifyPassword('x', 'x'), /plain-text/)
})

test('check: valid credentials give the user name; wrong password, unknown user, no header and other schemes give null', async () => {
  const auth = new BasicAuth(parseUsers([`alice:${ALICE}`, `bob:${BOB}`]))
  assert.equal(await auth.check(basic('alice:wonderland')), 'alice')
  assert.equal(await auth.check(basic('bob:builder')), 'bob')
  assert.equal(await auth.check(basic('alice:wonderlanD')), null)
  assert.equal(await auth.check(basic('bob:')), null)
  assert.equal(await auth.check(basic('mallory:wonderland')), null)
  assert.equal(await auth.check(basic(':wonderland')), null, 'an empty user-id is well-formed, and unknown')
  assert.equal(await auth.check(undefined), null)
  assert.equal(await auth.check(''), null)
  assert.equal(await auth.check('Bearer x'), null)
  assert.equal(await auth.check('Digest username="alice", realm="r"'), null)
  assert.equal(await auth.check('Bearer'), null)
})

test('check: the scheme is case-insensitive; spaces after it are allowed; padding is optional', async () => {
  const auth = new BasicAuth(parseUsers([`alice:${ALICE}`]))
  const token = Buffer.from('alice:wonderland').toString('base64')
  assert.ok(token.endsWith('='))
  for (const value of [`basic ${token}`, `BASIC ${token}`, `bAsIc   ${token}`, `Basic ${token.replace(/=+$/, '')}`, ` Basic ${token} `]) {
    assert.equal(await auth.check(value), 'alice', value)
  }
})

test('check: malformed Basic credentials are "malformed"', async () => {
  const auth = new BasicAuth(parseUsers([`alice:${ALICE}`]))
  const malformed = [
    'Basic !!!',
    'Basic',
    'Basic    ',
    basic('alicewonderland'),
    `Basic ${Buffer.from('alice:wonderland').toString('base64')}, realm="x"`,
    `Basic ${Buffer.from('alice:wonderland').toString('base64')}==`,
    'Basic YWxpY2U6d29uZGVybGFuZA=x',
    'Basic Y',
    basic(Buffer.from([0x61, 0x3a, 0xff, 0xfe])), // "a:" and bytes that are not UTF-8
    '@@@ x',
    `Basic ${'A'.repeat(MAX_AUTHORIZATION_LENGTH)}`
  ]
  for (const value of malformed) assert.equal(await auth.check(value), 'malformed', value.slice(0, 60))
  assert.equal(auth.verifications, 0, 'nothing malformed reaches a hash')
})

test('check: UTF-8 user-pass; the first colon splits, so a password may contain colons', async () => {
  const auth = new BasicAuth([{ name: 'Zoë', hash: CAROL }, { name: 'alice', hash: ALICE }])
  assert.equal(await auth.check(basic('Zoë:пароль✓ with spaces: and colons')), 'Zoë')
  assert.equal(await auth.check(basic('Zoe\u0308:пароль✓ with spaces: and colons')), 'Zoë', 'the user-id is compared after NFC')
  assert.equal(await auth.check(basic('Zoë:пароль✓ with spaces')), null)
  assert.equal(await auth.check(`Basic ${Buffer.from('Zoë:x', 'latin1').toString('base64')}`), 'malformed', 'Latin-1 bytes are not UTF-8')
})

test('check: an unknown user still runs a verification (against a dummy hash)', async () => {
  const auth = new BasicAuth(parseUsers([`alice:${ALICE}`]))
  assert.equal(await auth.check(basic('nobody:wonderland')), null)
  assert.equal(auth.verifications, 1)
  const empty = new BasicAuth([])
  assert.equal(await empty.check(basic('alice:wonderland')), null)
  assert.equal(empty.verifications, 1)
})

test('check: a successful verification is cached; failures are not; cacheSize 0 turns the cache off', async () => {
  const auth = new BasicAuth(parseUsers([`alice:${ALICE}`, `bob:${BOB}`]), { cacheSize: 10 })
  assert.equal(await auth.check(basic('bob:builder')), 'bob')
  assert.equal(auth.cacheHits, 0)
  assert.equal(await auth.check(basic('bob:builder')), 'bob')
  assert.equal(await auth.check(`basic   ${Buffer.from('bob:builder').toString('base64')}`), 'bob', 'keyed by the credential bytes, not the field text')
  assert.equal(auth.cacheHits, 2)
  assert.equal(auth.verifications, 1)
  assert.equal(await auth.check(basic('bob:wrong')), null)
  assert.equal(await auth.check(basic('bob:wrong')), null)
  assert.equal(auth.verifications, 3, 'a failure is verified every time')
  const off = new BasicAuth(parseUsers([`alice:${ALICE}`]), { cacheSize: 0 })
  assert.equal(await off.check(basic('alice:wonderland')), 'alice')
  assert.equal(await off.check(basic('alice:wonderland')), 'alice')
  assert.equal(off.cacheHits, 0)
  assert.equal(off.verifications, 2)
})

test('check: the cache is bounded (least recently used goes first)', async () => {
  const auth = new BasicAuth(parseUsers([`alice:${ALICE}`, `bob:${BOB}`]), { cacheSize: 1 })
  await auth.check(basic('alice:wonderland'))
  await auth.check(basic('bob:builder'))
  assert.equal(await auth.check(basic('alice:wonderland')), 'alice')
  assert.equal(auth.cacheHits, 0)
  assert.equal(auth.verifications, 3)
})

test('check: concurrent checks of the same credential share one verification', async () => {
  const auth = new BasicAuth(parseUsers([`alice:${ALICE}`]))
  const results = await Promise.all(Array.from({ length: 5 }, async () => await auth.check(basic('alice:wonderland'))))
  assert.deepEqual(results, Array(5).fill('alice'))
  assert.equal(auth.verifications, 1)
})

test('the challenge names the realm (quoted-string escaped) and charset UTF-8; a realm with control characters is refused', () => {
  assert.equal(new BasicAuth([]).challenge, 'Basic realm="restricted", charset="UTF-8"')
  assert.equal(new BasicAuth([], { realm: 'Staff "only" \\ here' }).challenge, 'Basic realm="Staff \\"only\\" \\\\ here", charset="UTF-8"')
  assert.throws(() => new BasicAuth([], { realm: 'a\r\nSet-Cookie: x=y' }), RangeError)
  assert.throws(() => new BasicAuth([], { cacheSize: -1 }), RangeError)
})

test('the constructor refuses what parseUsers would: bad hashes, duplicates, names with ":"', () => {
  assert.throws(() => new BasicAuth([{ name: 'a', hash: 'plain' }]), /entry 1: .*plain-text/)
  assert.throws(() => new BasicAuth([{ name: 'a', hash: ALICE }, { name: 'a', hash: BOB }]), /entry 2: duplicate/)
  assert.throws(() => new BasicAuth([{ name: 'a:b', hash: ALICE }]), /entry 1/)
  assert.throws(() => new BasicAuth([{ name: '', hash: ALICE }]), /entry 1/)
})
