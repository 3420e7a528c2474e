/**
 * Cache test fixtures: a scripted origin (a handler per path, told how many times that path was asked) and a
 * caching proxy in front of it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startOrigin, startProxy, type Origin, type RunningProxy } from './servers.js'
import type { PorticoConfig } from '../../src/index.js'

export type Script = (req: IncomingMessage, res: ServerResponse, n: number) => void

export interface CacheRig {
  origin: Origin
  proxy: RunningProxy
  /** Requests the origin received for a path (query included). */
  hits (path: string): number
  /** Sets (or replaces) the script for a path. */
  on (path: string, script: Script): void
  url (path: string): string
  close (): Promise<void>
}

export async function cacheRig (cache: PorticoConfig['cache'] = true, extra: Partial<PorticoConfig> = {}): Promise<CacheRig> {
  const scripts = new Map<string, Script>()
  const counts = new Map<string, number>()
  const origin = await startOrigin((req, res) => {
    const path = req.url ?? '/'
    const n = (counts.get(path) ?? 0) + 1
    counts.set(path, n)
    const script = scripts.get(path)
    if (script === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('no script')
      return
    }
    script(req, res, n)
  })
  const proxy = await startProxy({ upstreams: { '*': [origin.url] }, cache, log: { access: false }, ...extra })
  return {
    origin,
    proxy,
    hits: (path) => counts.get(path) ?? 0,
    on: (path, script) => { scripts.set(path, script) },
    url: (path) => `${proxy.url}${path}`,
    close: async () => {
      await proxy.close()
      await origin.close()
    }
  }
}

/** A script answering `body` with the given header fields. */
export function reply (headers: Record<string, string | string[]>, body: string | ((n: number) => string) = 'hello', status = 200): Script {
  return (_req, res, n) => {
    const text = typeof body === 'function' ? body(n) : body
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(text)), ...headers })
    res.end(text)
  }
}
