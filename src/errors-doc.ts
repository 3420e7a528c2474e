/**
 * Renders docs/errors.md from the registry, so the document cannot drift from the code (a test compares them).
 */
import { ERRORS, type ErrorSpec } from './errors.js'

/** The whole docs/errors.md text. */
export function renderErrorsDoc (): string {
  const rows = Object.entries(ERRORS as Record<string, ErrorSpec>).map(([code, e]) =>
    `| \`${code}\` | ${e.status} | ${e.source} | ${e.retry}${e.condition === undefined ? '' : ` (\`${e.condition}\`)`} | \`${e.proxyStatus}\` | ${e.description} |`)
  return `# Error codes

Generated from \`src/errors.ts\` by \`node scripts/gen-errors-doc.js\`; a test keeps the two in sync. Codes are never
renamed once shipped.

Every error response Portico writes is short plain text naming the code and the request id, with these headers:

- \`Proxy-Status: portico; error=<type>; details="<code>"\` (RFC 9209; the type is the column below),
- \`X-Request-Id: <id>\`, the same id as the access-log line's \`reqId\`,
- \`Cache-Control: no-store\`,
- \`Retry-After: <seconds>\` on the 503s a pool answers without trying a node (no healthy node, overloaded).

Status rule: **503** when no upstream was tried, **502** when one was tried and failed, **504** when it was too
slow, **499** (logged, never sent) when the client left first.

"Retry" is the rule a pool reads to decide whether another node may be tried after a failed attempt, and in
parentheses the condition that names the failure in a pool's \`retry.on\` (docs/balancing.md):

- \`any\`: nothing of the request reached the node (the connection never formed). Any request whose body was not read
  yet (or is kept for replay) goes to another node, and the failure counts against the node (passive health).
- \`idempotent\`: the node may have seen the request. Only a request with an idempotent method (RFC 9110 §9.2.2)
  whose body is absent or kept for replay is sent again.
- \`never\`: no other attempt.

| code | status | source | retry | Proxy-Status error | meaning |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
`
}
