import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createProxy, loadConfigText, Proxy } from '../../src/index.js'
import { captureLogs, FIXTURES, send, startOrigin, startProxy, writeRepeated } from '../helpers/servers.js'

test('YAML handler module: default and named exports, served in-process behind routing and headers', async (t) => {
  const config = await loadConfigText(`
listen: [{ host: 127.0.0.1, port: 0 }]
routes:
  - host: "*"
    upstream: { handler: ./apps/hello.mjs }
  - host: "*"
    path: /named
    stripPrefix: true
    upstream: { handler: "./apps/hello.mjs#named" }
`, { baseDir: FIXTURES })
  const logs = captureLogs()
  const proxy = new Proxy(config, { logger: logs.logger })
  const [addr] = await proxy.listen()
  t.after(() => proxy.close())
  const r = await send(`${addr.url}/x?y=1`, { headers: { host: 'Portal.test' } })
  assert.equal(r.status, 200)
  assert.equal(r.headers['x-handler'], 'hello')
  assert.equal(r.body.toString(), 'hello from /x?y=1 via Portal.test')
  assert.equal((await send(`${addr.url}/named/z`)).body.toString(), 'named export')
  const line = logs.lines.find((l) => l.path === '/x?y=1')
  assert.equal(line?.upstream, 'handler:./apps/hello.mjs')
  assert.equal(line?.status, 200)
})

test('function handler (TypeScript config): faithful request, streamed bodies both ways with SHA-256', async (t) => {
  const seen: { method?: string, url?: string, headers?: http.IncomingHttpHeaders } = {}
  const size = 100 * 1024 * 1024
  const app: http.RequestListener = (req, res) => {
    Object.assign(seen, { method: req.method, url: req.url, headers: req.headers })
    if (req.method === 'POST') {
      const h = createHash('sha256')
      req.on('data', (c: Buffer) => h.update(c))
      req.on('end', () => res.end(h.digest('hex')))
      return
    }
    res.writeHead(200, { 'content-length': String(size) })
    writeRepeated(res, Buffer.alloc(1024 * 1024, 7), size)
  }
  const proxy = await startProxy({ routes: [{ host: '*', upstream: { handler: app } }] })
  t.after(() => proxy.close())

  const body = Buffer.alloc(100 * 1024 * 1024, 3)
  const up = await send(`${proxy.url}/upload%20me?x=1`, { method: 'POST', body, headers: { 'x-test': 'yes' } })
  assert.equal(up.body.toString(), createHash('sha256').update(body).digest('hex'))
  assert.equal(seen.method, 'POST')
  assert.equal(seen.url, '/upload%20me?x=1')
  assert.equal(seen.headers?.['x-test'], 'yes')
  assert.equal(seen.headers?.['x-forwarded-for'], '127.0.0.1')
  assert.equal(seen.headers?.via, '1.1 portico')

  const down = await send(`${proxy.url}/download`)
  assert.equal(down.body.length, size)
  assert.equal(createHash('sha256').update(down.body).digest('hex'), createHash('sha256').update(Buffer.alloc(size, 7)).digest('hex'))
})

test('fetch-style handler object', async (t) => {
  const proxy = await startProxy({
    routes: [{
      host: '*',
      upstream: {
        handler: {
          fetch: async (request: Request) => new Response(`fetched ${new URL(request.url).pathname} ${await request.text()}`, {
            status: 202, headers: [['set-cookie', 'a=1'], ['set-cookie', 'b=2']]
          })
        }
      }
    }]
  })
  t.after(() => proxy.close())
  const r = await send(`${proxy.url}/f`, { method: 'POST', body: 'data' })
  assert.equal(r.status, 202)
  assert.equal(r.body.toString(), 'fetched /f data')
  assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2'])
})

test('upstream: { fetch } takes a fetch-style function directly, as handler: { fetch } does', async (t) => {
  const proxy = await startProxy({
    routes: [{
      host: '*',
      upstream: { fetch: async (request: Request) => new Response(`direct ${request.method} ${new URL(request.url).search}`, { status: 201 }) }
    }]
  })
  t.after(() => proxy.close())
  const r = await send(`${proxy.url}/x?q=1`)
  assert.equal(r.status, 201)
  assert.equal(r.body.toString(), 'direct GET ?q=1')
  assert.throws(() => createProxy({ routes: [{ upstream: { fetch: async () => new Response('x'), nodes: ['http://127.0.0.1:1'] } }] }),
    (err: Error) => /exactly one of "nodes", "handler", "fetch" or "pool"/.test(err.message))
})

test('a throwing handler becomes 502 PORTICO_ERR_HANDLER_FAILED; an async rejection too', async (t) => {
  const proxy = await startProxy({
    routes: [
      { host: '*', path: '/sync', upstream: { handler: () => { throw new Error('boom') } } },
      { host: '*', path: '/async', upstream: { handler: async () => { throw new Error('later') } } }
    ]
  })
  t.after(() => proxy.close())
  for (const p of ['/sync', '/async']) {
    const r = await send(`${proxy.url}${p}`)
    assert.equal(r.status, 502, p)
    assert.match(String(r.headers['proxy-status']), /details="PORTICO_ERR_HANDLER_FAILED"/)
    assert.equal(r.headers['x-portico-internal-handler-failure'], undefined)
  }
})

test('handlers and remote nodes in one pool', async (t) => {
  const origin = await startOrigin((_req, res) => res.end('remote'))
  const proxy = await startProxy({
    upstreams: { '*': { nodes: [origin.url, { handler: (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('local') }] } }
  })
  t.after(() => Promise.all([proxy.close(), origin.close()]))
  const got = []
  for (let i = 0; i < 4; i++) got.push((await send(`${proxy.url}/`)).body.toString())
  assert.deepEqual(got, ['remote', 'local', 'remote', 'local'])
})

test('a client that leaves closes the in-process handler response (Node 20 duplexPair)', async (t) => {
  let closed!: () => void
  const handlerClosed = new Promise<void>((resolve) => { closed = resolve })
  const proxy = await startProxy({
    upstreams: {
      '*': {
        handler: (_req: http.IncomingMessage, res: http.ServerResponse) => {
          res.writeHead(200)
          const tick = setInterval(() => res.write('.'), 5)
          res.on('close', () => { clearInterval(tick); closed() })
        }
      }
    }
  })
  t.after(() => proxy.close())
  const req = http.get(`${proxy.url}/stream`, { agent: false })
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  await once(res, 'data')
  req.destroy()
  await handlerClosed
})
