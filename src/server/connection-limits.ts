/**
 * Connection limits of a listener: `maxConnections` open connections in all (Node's own `server.maxConnections`,
 * which closes further ones at accept and reports them as 'drop'), and `maxConnectionsPerIp` from one address
 * (connections from trusted proxies are not counted: they carry many clients). A refused connection is closed at
 * once, before TLS or any byte of HTTP, counted, and logged at most once a minute per listener.
 */
import type { Server as NetServer, Socket } from 'node:net'
import type { ResolvedListener } from '../config/resolved.js'
import type { AddressSet } from '../http/address-set.js'
import type { Logger } from '../observability/logger.js'

/** Connections refused, by reason, since start. */
export interface RefusedConnections {
  maxConnections: number
  maxConnectionsPerIp: number
}

/** Applies a listener's connection limits to its server. */
export function limitConnections (server: NetServer, l: ResolvedListener, refused: RefusedConnections, trust: () => AddressSet | null, logger: Logger): void {
  let lastLog = 0
  const note = (reason: keyof RefusedConnections, address: string | undefined): void => {
    refused[reason]++
    const now = Date.now()
    if (now - lastLog < 60_000) return
    lastLog = now
    logger.warn({ listener: `${l.host}:${l.port}`, reason, address, refused: { ...refused } }, `connection refused: ${reason} reached`)
  }
  if (l.maxConnections > 0) {
    server.maxConnections = l.maxConnections
    server.on('drop', (data?: { remoteAddress?: string }) => note('maxConnections', data?.remoteAddress))
  }
  if (l.maxConnectionsPerIp > 0) {
    const perIp = new Map<string, number>()
    server.prependListener('connection', (socket: Socket) => {
      const ip = socket.remoteAddress
      if (ip === undefined || trust()?.has(ip) === true) return
      const n = (perIp.get(ip) ?? 0) + 1
      if (n > l.maxConnectionsPerIp) {
        note('maxConnectionsPerIp', ip)
        socket.destroy()
        return
      }
      perIp.set(ip, n)
      socket.once('close', () => {
        const left = (perIp.get(ip) ?? 1) - 1
        if (left === 0) perIp.delete(ip)
        else perIp.set(ip, left)
      })
    })
  }
}
