import { MemoryStore } from '../../src/cache/memory-store.js'
import { storeConformance } from '../conformance/cache-store.js'

const maxObjectSize = 256 * 1024

storeConformance('memory', {
  maxObjectSize,
  make: async () => new MemoryStore({ maxSize: 8 * 1024 * 1024, maxObjectSize })
})
