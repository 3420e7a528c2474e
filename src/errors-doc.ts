/**
 * Renders docs/errors.md from the registry, so the document cannot drift from the code (a test compares them).
 */
import { ERRORS, type ErrorSpec } from './errors.js'

/** The whole docs/errors.md text. */
export function renderErrorsDoc (): string {
  const rows = Object.entries(ERRORS as Record<string, ErrorSpec>).map(([code, e]) =>
    `| \`${code}\` | ${e.status} | ${e.source} | ${e.retryable ? 'yes' : 'no'} | \`${e.proxyStatus}\` | ${e.description} |`)
  return `# Error codes

Generated from \`src/errors.ts\` by \`node scripts/gen-errors-doc.js\`; a test keeps the two in sync. Codes are never
renamed once shipped.

Every error response Portico writes is short plain text naming the code and the request id, with these headers:

- \`Proxy-Status: portico; error=<type>; details="<code>"\` (RFC 9209; the type is the column below),
- \`X-Request-Id: <id>\`, the same id as the access-log line's \`reqId\`,
- \`Cache-Control: no-store\`.

Status rule: **503** when no upstream was tried, **502** when one was tried and failed, **504** when it was too
slow, **499** (logged, never sent) when the client left first. "Retryable" means another node may be tried when
nothing of the request can have reached the failed one (see README, Upstreams).

| code | status | source | retryable | Proxy-Status error | meaning |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`
}
