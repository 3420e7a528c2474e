/**
 * The proxy under soak (bench/soak.ts), in its own process so that its memory and descriptors are its own: a
 * Portico built from the config in argv[2] (JSON), listening where it says. On each IPC message it runs a full
 * garbage collection (the parent starts it with --expose-gc) and answers with `process.memoryUsage()`.
 */
import { createProxy } from '../src/index.js'

const config = JSON.parse(process.argv[2] ?? '{}') as Parameters<typeof createProxy>[0]
const proxy = createProxy(config)
const [addr] = await proxy.listen()
process.send?.({ ready: addr.port })
process.on('message', () => {
  (globalThis as { gc?: () => void }).gc?.()
  process.send?.({ memory: process.memoryUsage() })
})
process.on('SIGTERM', () => { void proxy.close({ drainTimeout: 1000 }).then(() => process.exit(0)) })
