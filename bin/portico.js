#!/usr/bin/env node
// The portico command. The TypeScript sources are compiled to dist/ by `npm run build` (run by npm start/test).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const entry = new URL('../dist/src/cli/main.js', import.meta.url)
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('portico: dist/ is missing; run `npm run build` first\n')
  process.exit(1)
}
const { main } = await import(entry.href)
await main(process.argv.slice(2))
