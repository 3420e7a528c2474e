#!/usr/bin/env node
// Writes docs/errors.md from the error registry (dist/src/errors.js; run `npm run build` first).
// test/unit/docs.test.ts fails when the file and the registry disagree.
import { writeFileSync } from 'node:fs'
import { renderErrorsDoc } from '../dist/src/errors-doc.js'

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc())
console.log('wrote docs/errors.md')
