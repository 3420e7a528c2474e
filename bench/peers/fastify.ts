/**
 * @fastify/http-proxy on Fastify 5 as a benchmark peer, run as its own process:
 * `node dist/bench/peers/fastify.js PORT TARGET`. Its defaults (undici via @fastify/reply-from, request bodies
 * streamed through), with the undici pool widened to 256 connections like Portico's and node-http-proxy's.
 */
import Fastify from 'fastify'
import fastifyHttpProxy from '@fastify/http-proxy'

const port = Number(process.argv[2])
const target = process.argv[3]
if (!Number.isInteger(port) || port <= 0 || target === undefined) {
  process.stderr.write('usage: fastify.js PORT TARGET\n')
  process.exit(2)
}

const app = Fastify({ logger: false })
await app.register(fastifyHttpProxy, { upstream: target, undici: { connections: 256, pipelining: 1 } })
await app.listen({ port, host: '127.0.0.1' })
process.on('SIGTERM', () => process.exit(0))
