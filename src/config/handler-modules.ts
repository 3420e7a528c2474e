/**
 * In-process handlers named in a config: importing the modules a config names by path (`"./apps/status.mjs#export"`,
 * relative to the config file), and resolving each handler reference — a path or, in code, the value itself — to
 * what the runtime runs. Loading is asynchronous and happens first, so the meaning pass itself stays synchronous.
 */
import { pathToFileURL } from 'node:url'
import path from 'node:path'
import { handlerTarget } from '../upstream/handler-target.js'
import type { HandlerTarget } from '../upstream/types.js'
import type { ConfigIssue } from './resolved.js'
import type { ParsedConfig, ParsedPool, ParsedUpstream } from './schema.js'

/** Loaded modules by reference string; an error message where loading failed. */
export type HandlerModules = ReadonlyMap<string, HandlerTarget | string>

/** Imports every handler module the config names by path, relative to `baseDir`. Never rejects. */
export async function loadHandlerModules (cfg: ParsedConfig, baseDir: string): Promise<Map<string, HandlerTarget | string>> {
  const refs = new Set<string>()
  const visit = (u: ParsedUpstream | ParsedPool): void => {
    if (typeof u === 'function') return
    const list = Array.isArray(u) ? u : (u.nodes ?? [{ handler: u.handler }])
    for (const m of list) if (typeof m === 'object' && m !== null && 'handler' in m && typeof m.handler === 'string') refs.add(m.handler)
  }
  for (const u of Object.values(cfg.upstreams ?? {})) visit(u)
  for (const p of Object.values(cfg.pools ?? {})) visit(p)
  for (const r of cfg.routes ?? []) if (r.upstream !== undefined) visit(r.upstream)
  const out = new Map<string, HandlerTarget | string>()
  await Promise.all([...refs].map(async (ref) => {
    const [file, exportName = 'default'] = ref.split('#')
    const abs = path.resolve(baseDir, file)
    try {
      const mod = await import(pathToFileURL(abs).href) as Record<string, unknown>
      if (!(exportName in mod)) out.set(ref, `module "${file}" has no export "${exportName}"`)
      else out.set(ref, handlerTarget(mod[exportName]) ?? `export "${exportName}" of "${file}" is not a (req, res) => void function or an object with fetch()`)
    } catch (err) {
      out.set(ref, `cannot load handler module "${file}": ${(err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' ? 'file not found' : (err as Error).message}`)
    }
  }))
  return out
}

/**
 * What a handler reference runs: the value itself when given in code, or the loaded module for a path. A path that
 * was not loaded (an options object given to `createProxy`) or failed to load becomes an issue at `at`.
 */
export function resolveHandler (ref: unknown, at: (string | number)[], modules: HandlerModules | undefined, issues: ConfigIssue[]): HandlerTarget | undefined {
  if (typeof ref !== 'string') {
    const t = handlerTarget(ref)
    if (t === undefined) issues.push({ path: at, message: 'expected a (req, res) => void function or an object with fetch()' })
    return t
  }
  const loaded = modules?.get(ref)
  if (loaded === undefined) {
    issues.push({ path: at, message: 'handler module paths are loaded by loadConfigFile or loadConfigObject; pass the function itself to createProxy', value: ref })
    return undefined
  }
  if (typeof loaded === 'string') {
    issues.push({ path: at, message: loaded, value: ref })
    return undefined
  }
  return loaded
}

/** The member id of a handler in logs: "handler:./apps/status.mjs", "handler:myApp", "handler:anonymous". */
export function handlerId (ref: unknown): string {
  if (typeof ref === 'string') return `handler:${ref}`
  const name = typeof ref === 'function' ? ref.name : ''
  return `handler:${name || 'anonymous'}`
}
