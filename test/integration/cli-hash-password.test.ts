/**
 * `portico hash-password` as a real child process: the password piped on standard input (first line), the hash on
 * stdout verifying with `verifyPassword`, `--algorithm bcrypt`, the usage errors (exit 2), and the terminal prompt
 * (under util-linux `script`, which gives the CLI a pseudo-terminal; skipped where `script` is missing).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import { ROOT, runCli } from '../helpers/servers.js'
import { parseUsers, verifyPassword } from '../../src/rules/basic-auth.js'

test('reads the first line of stdin and prints a scrypt hash that verifies', async () => {
  const r = await runCli(['hash-password'], { input: 'correct horse ✓\nsecond line is ignored\n' })
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+\n$/)
  const hash = r.stdout.trimEnd()
  assert.equal(await verifyPassword('correct horse ✓', hash), true)
  assert.equal(await verifyPassword('second line is ignored', hash), false)
  assert.equal(parseUsers(`alice:${hash}`)[0].hash, hash, 'ready for a user list')
  assert.equal(r.stderr, '')
})

test('a line without a newline, and a CRLF line, are the password without line ending', async () => {
  const bare = await runCli(['hash-password'], { input: 'no newline' })
  assert.equal(bare.code, 0, bare.stderr)
  assert.equal(await verifyPassword('no newline', bare.stdout.trimEnd()), true)
  const crlf = await runCli(['hash-password'], { input: 'windows\r\n' })
  assert.equal(crlf.code, 0, crlf.stderr)
  assert.equal(await verifyPassword('windows', crlf.stdout.trimEnd()), true)
})

test('--algorithm bcrypt prints a bcrypt hash that verifies', async () => {
  const r = await runCli(['hash-password', '--algorithm', 'bcrypt'], { input: 'pässwörd\n' })
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^\$2[ab]\$12\$[./A-Za-z0-9]{53}\n$/)
  assert.equal(await verifyPassword('pässwörd', r.stdout.trimEnd()), true)
  const scrypt = await runCli(['hash-password', '-a', 'scrypt'], { input: 'x\n' })
  assert.equal(scrypt.code, 0, scrypt.stderr)
  assert.match(scrypt.stdout, /^\$scrypt\$/)
})

test('an empty password, a line over 64 KiB, an unknown algorithm or a too-long bcrypt password exit 2 with a message on stderr', async () => {
  for (const input of ['', '\n', '\r\n', '\nsecond\n']) {
    const r = await runCli(['hash-password'], { input })
    assert.equal(r.code, 2, JSON.stringify(input))
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /empty password/)
  }
  const nothing = await runCli(['hash-password'])
  assert.equal(nothing.code, 2, 'stdin not connected: nothing to read')
  assert.match(nothing.stderr, /empty password/)
  const huge = await runCli(['hash-password'], { input: `${'x'.repeat(70_000)}\n` })
  assert.equal(huge.code, 2)
  assert.match(huge.stderr, /longer than 64 KiB/)
  const md5 = await runCli(['hash-password', '--algorithm', 'md5'], { input: 'x\n' })
  assert.equal(md5.code, 2)
  assert.match(md5.stderr, /md5/)
  const long = await runCli(['hash-password', '--algorithm', 'bcrypt'], { input: `${'x'.repeat(73)}\n` })
  assert.equal(long.code, 2)
  assert.match(long.stderr, /72 bytes/)
  assert.equal(long.stdout, '')
})

test('the default command still runs the proxy: hash-password is listed in --help and takes no config', async () => {
  const h = await runCli(['--help'])
  assert.equal(h.code, 0)
  assert.match(h.stdout, /hash-password/)
  const r = await runCli(['--config', '/nonexistent/portico.yaml'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /cannot read file: ENOENT/)
})

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).stdout?.includes('util-linux') === true

/**
 * Runs `portico hash-password` on a pseudo-terminal; each time the output ends with the next prompt, types the next
 * answer. Resolves with the exit code and everything the terminal showed.
 */
function onTerminal (answers: Array<[prompt: string, typed: string]>): Promise<{ code: number | null, screen: string }> {
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(ROOT, 'bin/portico.js'))} hash-password`
  const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  let screen = ''
  let next = 0
  child.stdout.on('data', (c: Buffer) => {
    screen += c.toString()
    if (next < answers.length && screen.endsWith(answers[next][0])) child.stdin.write(answers[next++][1])
  })
  child.stdin.on('error', () => {})
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, screen })
    })
  })
}

test('on a terminal it prompts twice without echo and prints the hash', { skip: !hasScript && 'util-linux script is not installed' }, async () => {
  const r = await onTerminal([['Password: ', 'tty secret\r'], ['Again: ', 'tty secret\r']])
  assert.equal(r.code, 0, r.screen)
  assert.ok(!r.screen.includes('tty secret'), `the password is not echoed: ${JSON.stringify(r.screen)}`)
  const hash = /\$scrypt\$\S+/.exec(r.screen)?.[0]
  assert.ok(hash !== undefined, r.screen)
  assert.equal(await verifyPassword('tty secret', hash), true)
})

test('on a terminal a mismatch is refused with exit 2', { skip: !hasScript && 'util-linux script is not installed' }, async () => {
  const r = await onTerminal([['Password: ', 'one\r'], ['Again: ', 'two\r']])
  assert.equal(r.code, 2, r.screen)
  assert.match(r.screen, /do not match/)
  assert.doesNotMatch(r.screen, /\$scrypt\$/)
})
