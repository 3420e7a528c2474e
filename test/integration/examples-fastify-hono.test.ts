/**
 * The Fastify and Hono examples as shipped: each is started against a test origin through its exported `start`
 * and must forward one request under /api without the prefix (with X-Forwarded-Prefix) and answer one route of
 * its own.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT, send, startOrigin } from '../helpers/servers.js'

interface Example {
  start (options: { port: number, upstream: string }): Promise<{ url: string, close (): Promise<void> }>
}

for (const name of ['fastify', 'hono']) {
  test(`examples/${name}: /api/* reaches the upstream without the prefix; /healthz is the app's own`, async (t) => {
    const origin = await startOrigin((req, res) => res.end(`origin saw ${req.url} under ${req.headers['x-forwarded-prefix']}`))
    const example = await import(pathToFileURL(path.join(ROOT, `examples/${name}/server.mjs`)).href) as Example
    const app = await example.start({ port: 0, upstream: origin.url })
    t.after(() => Promise.all([app.close(), origin.close()]))

    const proxied = await send(`${app.url}/api/users?id=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
    assert.equal(proxied.status, 200)
    assert.equal(proxied.body.toString(), 'origin saw /users?id=1 under /api')
    const own = await send(`${app.url}/healthz`)
    assert.equal(own.status, 200)
    assert.equal(own.body.toString(), 'ok\n')
    assert.equal(origin.requests.length, 1)
  })
}
