/**
 * An undici `connect` function that reaches a never-listening `http.Server` through an in-memory socket pair:
 * how in-process handlers and the fetch adapter get full HTTP fidelity with no port. Used by
 * upstream/in-process.ts and adapters/fetch.ts.
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { duplexPair } from 'node:stream'
import type { Pool } from 'undici'

function noop (): void {}

/** A connector for undici's `connect` option: every new connection is a duplexPair fed to `server`. */
export function inMemoryConnector (server: Server): NonNullable<Pool.Options['connect']> {
  return (_opts, callback) => {
    const [client, serverSide] = duplexPair()
    // Sockets need an error listener each; a destroyed pair reports errors to both ends.
    serverSide.on('error', noop)
    // On Node 20 destroying one end of a duplexPair does not destroy the other: link them, so an aborted request
    // reaches the server side (the handler's response closes) and a connection the server drops reaches undici.
    client.once('close', () => serverSide.destroy())
    serverSide.once('close', () => client.destroy())
    server.emit('connection', serverSide)
    // undici expects the connector to answer asynchronously, like a real connect.
    process.nextTick(callback, null, client as unknown as Socket)
  }
}
