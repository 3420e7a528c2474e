/**
 * The one place Portico takes undici's classes from. undici's package entry loads all of undici (fetch, WebSocket,
 * EventSource, cookies, mocks, the cache interceptors) and, through its web modules, Node's own bundled copy of
 * undici as well: about 8 MiB of resident memory in every process for code a proxy never runs. Portico uses three
 * classes of it, so it loads the three modules that define them (undici's `lib/` files; undici declares no
 * `exports` map, so these paths resolve, and the dependency is pinned to one minor version because they are not
 * its documented entry). Its `request` API (forwardAuth, and automatic HTTPS's small requests: the on-demand ask
 * endpoint, the CA's renewal windows) comes from the package entry, loaded on first use.
 */
import { createRequire } from 'node:module'
import type * as Undici from 'undici'

let requestApi: typeof Undici.request | null = null

/** undici's `request` API, from its package entry, loaded on the first call. */
export async function undiciRequest (): Promise<typeof Undici.request> {
  requestApi ??= (await import('undici')).request
  return requestApi
}

const require = createRequire(import.meta.url)

/** undici's connection pool to one origin. */
export const Pool: typeof Undici.Pool = require('undici/lib/dispatcher/pool.js')
/** undici's dispatcher over many origins (a Pool per origin). */
export const Agent: typeof Undici.Agent = require('undici/lib/dispatcher/agent.js')
/** undici's TCP/TLS connector, which `remote.ts` wraps to fix the TLS name. */
export const buildConnector: typeof Undici.buildConnector = require('undici/lib/core/connect.js')
export type Pool = Undici.Pool
export type PoolOptions = Undici.Pool.Options
export type Agent = Undici.Agent
export type Connector = Undici.buildConnector.connector
export type ConnectorOptions = Undici.buildConnector.BuildOptions
