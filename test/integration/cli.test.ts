import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { readFileSync, writeFileSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { FIXTURES, ROOT, closedPort, runCli, send, startCli, startOrigin, writeRepeated } from '../helpers/servers.js'
import { sleep, until } from '../helpers/poll.js'

test('--version and --help', async () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
  const v = await runCli(['--version'])
  assert.equal(v.code, 0)
  assert.equal(v.stdout.trim(), pkg.version)
  const h = await runCli(['--help'])
  assert.equal(h.code, 0)
  for (const flag of ['--config', '--port', '--host', '--log-level', '--route', 'check']) assert.ok(h.stdout.includes(flag), flag)
})

test('a traffic rule with a mistake exits with status 2 and names file:line and key path, for each rule', async () => {
  const r = await runCli(['check', '--config', path.join(FIXTURES, 'invalid-rules.yaml')])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /invalid-rules\.yaml:15 {2}routes\.2\.rateLimit\.rate: expected a rate/, 'the shape pass')
  const meaning = await runCli(['check', '--config', path.join(FIXTURES, 'invalid-rules.yaml').replace('invalid-rules', 'invalid-rules-meaning')])
  assert.equal(meaning.code, 2)
  for (const line of [
    /invalid-rules-meaning\.yaml:7 {2}routes\.0\.headers\.request\.set\.x-user: unknown placeholder \{client\.name\}/,
    /invalid-rules-meaning\.yaml:8 {2}routes\.0\.rewrite\.match: a repeated group holding a quantifier/,
    /invalid-rules-meaning\.yaml:11 {2}routes\.1\.upstream: this route answers every request itself/,
    /invalid-rules-meaning\.yaml:12 {2}routes\.1\.allow\.0: expected an address, a CIDR/,
    /invalid-rules-meaning\.yaml:14 {2}routes\.2\.cors\.origins\.0: expected an origin/,
    /invalid-rules-meaning\.yaml:15 {2}routes\.2\.errorPages\.502: no such file/,
    /invalid-rules-meaning\.yaml:16 {2}routes\.2\.basicAuth\.users: .*hash-password/,
    /invalid-rules-meaning\.yaml:17 {2}routes\.2\.redirect\.to: \{1\}: capture groups/
  ]) assert.match(meaning.stderr, line)
})

test('an invalid config exits with status 2 and names file:line, key path, value and expectation', async () => {
  const r = await runCli(['--config', path.join(FIXTURES, 'invalid.yaml')])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /invalid\.yaml:5 {2}routes\.0\.path: expected a path starting with "\/" \(got "api"\)/)
  assert.match(r.stderr, /invalid\.yaml:10 {2}routes\.1\.stripPrefx: unknown key/)
  const missing = await runCli(['--config', '/nonexistent/portico.yaml'])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /cannot read file: ENOENT/)
  const badFlag = await runCli(['--port', 'eighty'])
  assert.equal(badFlag.code, 2)
})

test('portico check validates and prints the compiled route table', async () => {
  const r = await runCli(['check', '--config', path.join(FIXTURES, 'short-form.yaml')])
  assert.equal(r.code, 0, r.stderr)
  const lines = r.stdout.split('\n')
  assert.match(r.stdout, /short-form\.yaml: OK/)
  const table = lines.filter((l) => l.includes('->'))
  assert.equal(table.length, 3)
  assert.match(table[0], /foobar\.localhost +exact +\/ +-> http:\/\/www\.example\.com/)
  assert.match(table[1], /slogsdon\.com +exact +\/ +-> http:\/\/localhost:4001/)
  assert.match(table[2], /api\. +prefix +\/ +-> http:\/\/localhost:4000/)
  assert.doesNotMatch(r.stdout, /cached|cache:/, 'the short form says cache: false')
  const bad = await runCli(['check', '--config', path.join(FIXTURES, 'invalid.yaml')])
  assert.equal(bad.code, 2)
})

test('portico check shows which routes are cached, the cache and the admin listener', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-check-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'cache.yaml')
  writeFileSync(file, [
    'upstreams:',
    '  a.test: ["http://127.0.0.1:1"]',
    'routes:',
    '  - host: b.test',
    '    upstream: ["http://127.0.0.1:2"]',
    '    cache: false',
    'cache: { maxSize: 64mb }',
    'admin: { port: 9901 }',
    ''
  ].join('\n'))
  const r = await runCli(['check', '--config', file])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /a\.test +exact +\/ +-> http:\/\/127\.0\.0\.1:1 +\(cached\)/)
  assert.match(r.stdout, /b\.test +exact +\/ +-> http:\/\/127\.0\.0\.1:2\n/)
  assert.match(r.stdout, /cache: memory, 64 MiB, objects up to 8 MiB/)
  assert.match(r.stdout, /admin: 127\.0\.0\.1:9901/)
})

test('quick mode with --route, --port/--host overrides, and one JSON access-log line per request', async (t) => {
  const api = await startOrigin((req, res) => res.end(`api ${req.url}`))
  const rest = await startOrigin((req, res) => res.end(`rest ${req.url}`))
  const port = await closedPort()
  const cli = await startCli(['--route', `api.localhost=${api.url}`, '--route', `*=${rest.url}`, '--port', String(port), '--host', '127.0.0.1'])
  t.after(() => Promise.all([api.close(), rest.close()]))
  assert.equal(cli.url, `http://127.0.0.1:${port}`)
  assert.equal((await send(`${cli.url}/a?b=1`, { headers: { host: 'api.localhost' } })).body.toString(), 'api /a?b=1')
  assert.equal((await send(`${cli.url}/z`, { headers: { host: 'other' } })).body.toString(), 'rest /z')
  cli.child.kill('SIGTERM')
  assert.equal(await cli.exited, 0)
  const access = cli.stdout.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.reqId !== undefined)
  assert.equal(access.length, 2)
  const first = access[0]
  for (const key of ['time', 'method', 'host', 'path', 'route', 'upstream', 'status', 'bytes', 'durationMs']) assert.ok(key in first, key)
  assert.equal(first.method, 'GET')
  assert.equal(first.host, 'api.localhost')
  assert.equal(first.path, '/a?b=1')
  assert.equal(first.route, 'api.localhost')
  assert.equal(first.upstream, api.url)
  assert.equal(first.status, 200)
  assert.equal(first.bytes, 'api /a?b=1'.length)
  assert.equal(typeof first.durationMs, 'number')
})

test('the short config form runs as written (hosts rewritten to local origins)', async (t) => {
  const origins = await Promise.all(['foobar', 'api', 'slogsdon'].map((n) => startOrigin((_req, res) => res.end(n))))
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-'))
  const file = path.join(dir, 'portico.yaml')
  const text = readFileSync(path.join(FIXTURES, 'short-form.yaml'), 'utf8')
    .replace('http://www.example.com', origins[0].url)
    .replace('http://localhost:4000', origins[1].url)
    .replace('http://localhost:4001', origins[2].url)
  writeFileSync(file, text)
  const cli = await startCli(['--config', file, '--port', '0', '--host', '127.0.0.1'])
  t.after(() => Promise.all(origins.map((o) => o.close())))
  assert.equal((await send(cli.url, { headers: { host: 'foobar.localhost' } })).body.toString(), 'foobar')
  assert.equal((await send(cli.url, { headers: { host: 'api.anything' } })).body.toString(), 'api')
  assert.equal((await send(cli.url, { headers: { host: 'slogsdon.com' } })).body.toString(), 'slogsdon')
  assert.equal((await send(cli.url, { headers: { host: 'nobody.test' } })).status, 404)
  cli.child.kill('SIGINT')
  assert.equal(await cli.exited, 0)
})

test('SIGTERM drains: the request in flight completes, new connections are refused, exit 0', async (t) => {
  let arrived!: () => void
  const inFlight = new Promise<void>((resolve) => { arrived = resolve })
  const origin = await startOrigin((_req, res) => {
    arrived()
    setTimeout(() => res.end('finished late'), 400)
  })
  const cli = await startCli(['--route', `*=${origin.url}`, '--port', '0'])
  t.after(() => origin.close())
  const pending = send(`${cli.url}/slow`)
  await inFlight
  cli.child.kill('SIGTERM')
  // Give the signal a moment to be handled, then a new connection must fail.
  await sleep(100)
  await assert.rejects(send(`${cli.url}/new`), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED')
  const r = await pending
  assert.equal(r.status, 200)
  assert.equal(r.body.toString(), 'finished late')
  assert.equal(r.headers.connection, 'close')
  assert.equal(await cli.exited, 0)
})

test('memory stays flat while 1 GiB passes through (peak RSS of the proxy process)', async (t) => {
  const GiB = 1024 ** 3
  const block = Buffer.alloc(1024 * 1024, 1)
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { 'content-length': String(GiB) })
    writeRepeated(res, block, GiB)
  })
  const cli = await startCli(['--route', `*=${origin.url}`, '--port', '0'])
  t.after(() => origin.close())
  const status = (): { rss: number, hwm: number } => {
    const text = readFileSync(`/proc/${cli.child.pid}/status`, 'utf8')
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)![1]) * 1024
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
  }
  const before = status()
  const received = await new Promise<number>((resolve, reject) => {
    http.get(`${cli.url}/big`, { agent: false }, (res) => {
      let n = 0
      res.on('data', (c: Buffer) => { n += c.length })
      res.on('end', () => resolve(n))
      res.on('error', reject)
    }).on('error', reject)
  })
  const after = status()
  cli.child.kill('SIGTERM')
  await cli.exited
  assert.equal(received, GiB)
  // Flat: the peak grows by far less than the body (a fixed allowance for buffers and GC slack).
  const growth = after.hwm - before.rss
  assert.ok(growth < 128 * 1024 * 1024, `peak RSS grew by ${Math.round(growth / 1048576)} MiB while 1 GiB passed`)
})

test('config as a module (defineConfig, function handler) and as JSON with line numbers', async () => {
  const cli = await startCli(['--config', path.join(FIXTURES, 'portico.config.mjs')])
  assert.equal((await send(`${cli.url}/m`)).body.toString(), 'module config /m')
  cli.child.kill('SIGTERM')
  assert.equal(await cli.exited, 0)
  const json = await runCli(['check', '--config', path.join(FIXTURES, 'portico.json')])
  assert.equal(json.code, 2)
  assert.match(json.stderr, /portico\.json:5 {2}routes\.1\.path: expected string, received number \(got 12\)/)
})

test('portico cert --dev writes a certificate and key the TLS listener can use', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-cert-'))
  const r = await runCli(['cert', '--dev', 'localhost', 'app.localhost', '127.0.0.1', '--out', dir])
  assert.equal(r.code, 0, r.stderr)
  const cert = readFileSync(path.join(dir, 'localhost.pem'), 'utf8')
  const key = readFileSync(path.join(dir, 'localhost-key.pem'), 'utf8')
  const x509 = new X509Certificate(cert)
  assert.match(String(x509.subjectAltName), /DNS:localhost/)
  assert.match(String(x509.subjectAltName), /DNS:app\.localhost/)
  assert.match(String(x509.subjectAltName), /IP Address:127\.0\.0\.1/)
  assert.ok(createSecureContext({ cert, key }))
  assert.equal(statSync(path.join(dir, 'localhost-key.pem')).mode & 0o777, 0o600)
  assert.match(r.stdout, /certificates:/)
  const bad = await runCli(['cert', 'localhost'])
  assert.equal(bad.code, 2)
})

test('SIGHUP reloads certificates (file watching off) and the config file', async (t) => {
  const { testCert } = await import('../helpers/tls.js')
  const tls = await import('node:tls')
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-hup-'))
  const first = await testCert(['hup.test'], dir)
  const origin = await startOrigin((_req, res) => res.end('v1'))
  const other = await startOrigin((_req, res) => res.end('v2'))
  t.after(() => Promise.all([origin.close(), other.close()]))
  const file = path.join(dir, 'portico.yaml')
  const yaml = (node: string): string => `listen: [{ host: 127.0.0.1, port: 0, tls: true }]
tls: { watch: false, certificates: [{ hosts: ["hup.test"], cert: ${first.certFile}, key: ${first.keyFile} }] }
upstreams: { "*": ["${node}"] }
`
  writeFileSync(file, yaml(origin.url))
  const cli = await startCli(['--config', file])
  const port = Number(new URL(cli.url).port)
  const fingerprint = (): Promise<string> => new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'hup.test', rejectUnauthorized: false }, () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256)
      s.end()
    })
    s.on('error', reject)
  })
  const before = await fingerprint()
  const fresh = await testCert(['hup.test'], mkdtempSync(path.join(tmpdir(), 'portico-hup2-')))
  writeFileSync(first.certFile, fresh.cert)
  writeFileSync(first.keyFile, fresh.key)
  writeFileSync(file, yaml(other.url))
  assert.equal(await fingerprint(), before, 'nothing changes before the signal (watching is off)')
  cli.child.kill('SIGHUP')
  const expected = new X509Certificate(fresh.cert).fingerprint256
  // One 5 s bound for both waits below: the certificate, then the route.
  const deadline = Date.now() + 5000
  let now = before
  await until(async () => (now = await fingerprint()) === expected, { ms: deadline - Date.now(), every: 50 })
  assert.equal(now, expected)
  const https = await import('node:https')
  const get = (): Promise<string> => new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, servername: 'hup.test', headers: { host: 'hup.test' }, rejectUnauthorized: false, agent: false }, (res) => {
      let b = ''
      res.on('data', (d) => { b += d })
      res.on('end', () => resolve(b))
    }).on('error', reject)
  })
  // The config file is read asynchronously after the signal: poll (bounded) until the new route answers.
  let body = ''
  await until(async () => (body = await get()) === 'v2', { ms: deadline - Date.now(), every: 50 })
  assert.equal(body, 'v2', 'the reloaded config routes to the new node')
  cli.child.kill('SIGTERM')
  assert.equal(await cli.exited, 0)
})

test('tls.acme with more than one worker is refused with status 2 (no shared certificate storage yet)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portico-acme-cli-'))
  try {
    const file = path.join(dir, 'portico.yaml')
    writeFileSync(file, [
      'listen: [{ host: 127.0.0.1, port: 0 }, { host: 127.0.0.1, port: 0, tls: true }]',
      'upstreams: { example.com: ["http://127.0.0.1:9"] }',
      'tls: { acme: { email: ops@example.com, directory: "https://127.0.0.1:9/dir" } }',
      ''
    ].join('\n'))
    const r = await runCli(['--config', file, '--workers', '2'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /tls\.acme with storage on disk runs in one process/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
