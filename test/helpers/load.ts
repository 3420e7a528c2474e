/**
 * A bounded load loop for failure drills: `total` requests with at most `concurrency` in flight over keep-alive
 * connections, counted by status (and client-side errors). It stops by itself after `total` requests or `deadline`
 * ms, whichever comes first.
 */
import http from 'node:http'

export interface LoadResult {
  /** Responses by status; "error" for requests that failed without a response. */
  statuses: Record<string, number>
  completed: number
  /** Bodies by content (small bodies only: which node answered). */
  bodies: Record<string, number>
  /** Client-side failures by error code (ECONNRESET, ...), for diagnostics. */
  errors: Record<string, number>
}

export interface LoadOptions {
  total: number
  concurrency: number
  method?: string
  body?: string
  path?: string
  /** Called after each response with how many completed so far (to inject a failure mid-load). */
  onProgress?: (completed: number) => void
  /** Hard stop in ms (default 30 s). */
  deadline?: number
}

/** Runs the load and resolves with what the clients saw. */
export async function load (url: string, options: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency })
  const result: LoadResult = { statuses: {}, completed: 0, bodies: {}, errors: {} }
  const stopAt = Date.now() + (options.deadline ?? 30_000)
  let started = 0
  const one = (): Promise<void> => new Promise((resolve) => {
    const req = http.request(`${url}${options.path ?? '/'}`, {
      method: options.method ?? 'GET',
      agent,
      headers: options.body === undefined ? {} : { 'content-length': Buffer.byteLength(options.body) }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const key = String(res.statusCode)
        result.statuses[key] = (result.statuses[key] ?? 0) + 1
        const body = Buffer.concat(chunks).toString()
        if (body.length <= 32) result.bodies[body] = (result.bodies[body] ?? 0) + 1
        resolve()
      })
      res.on('error', () => {
        result.statuses.error = (result.statuses.error ?? 0) + 1
        resolve()
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      result.statuses.error = (result.statuses.error ?? 0) + 1
      const code = err.code ?? err.message
      result.errors[code] = (result.errors[code] ?? 0) + 1
      resolve()
    })
    req.end(options.body)
  })
  const worker = async (): Promise<void> => {
    while (started < options.total && Date.now() < stopAt) {
      started++
      await one()
      result.completed++
      options.onProgress?.(result.completed)
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  agent.destroy()
  return result
}
