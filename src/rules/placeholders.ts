/**
 * Placeholders in rule values (`{client.ip}`, `{request.host}`, `{env.NAME}`, `{1}` ...), compiled once per config
 * into a list of literal and variable parts; an unknown placeholder is a config error, never a literal at run time.
 * `{env.NAME}` is read at compile time. `{{` and `}}` write a literal brace.
 *
 * | placeholder | value |
 * | --- | --- |
 * | `{client.ip}` | the client address (behind `trustedProxies`, the one they reported) |
 * | `{request.host}` | the Host as the client sent it (with its port) |
 * | `{request.hostname}` | the normalised host, without port |
 * | `{request.method}` | the method |
 * | `{request.uri}` | path and query as sent |
 * | `{request.path}` | the path, without the query |
 * | `{request.query}` | the query, without "?" ("" when none) |
 * | `{request.scheme}` | `http` or `https` |
 * | `{request.id}` | the exchange id (X-Request-Id of Portico's own answers, `reqId` in the access log) |
 * | `{tls.sni}` | the SNI name of a TLS connection ("" otherwise) |
 * | `{route}` | the route's name |
 * | `{env.NAME}` | the environment variable NAME when the config is loaded |
 * | `{1}` … `{9}` | capture groups of a `rewrite` or `redirect` `match` |
 */

/** What a template is evaluated against. */
export interface PlaceholderContext {
  clientIp: string
  host: string
  hostname: string
  method: string
  uri: string
  scheme: string
  id: string
  sni: string
  route: string
  /** Capture groups of the rule's regex, index 0 the whole match. */
  groups: readonly (string | undefined)[] | null
}

type Part = string | ((c: PlaceholderContext) => string)

/** A compiled template. */
export interface Template {
  /** The literal text when the template has no placeholder (then `render` is never needed). */
  readonly literal: string | null
  render: (c: PlaceholderContext) => string
}

const VARIABLES: Record<string, (c: PlaceholderContext) => string> = {
  'client.ip': (c) => c.clientIp,
  'request.host': (c) => c.host,
  'request.hostname': (c) => c.hostname,
  'request.method': (c) => c.method,
  'request.uri': (c) => c.uri,
  'request.path': (c) => { const q = c.uri.indexOf('?'); return q === -1 ? c.uri : c.uri.slice(0, q) },
  'request.query': (c) => { const q = c.uri.indexOf('?'); return q === -1 ? '' : c.uri.slice(q + 1) },
  'request.scheme': (c) => c.scheme,
  'request.id': (c) => c.id,
  'tls.sni': (c) => c.sni,
  route: (c) => c.route
}

/** The documented placeholder names (for messages). */
export const PLACEHOLDERS = [...Object.keys(VARIABLES), 'env.NAME', '1'].map((n) => `{${n}}`)

/** Compiles `text`; throws an Error naming the first unknown placeholder. `captures`: whether {1}..{9} are allowed. */
export function compileTemplate (text: string, captures = false): Template {
  const parts: Part[] = []
  let lit = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '{' && text[i + 1] === '{') { lit += '{'; i++; continue }
    if (c === '}' && text[i + 1] === '}') { lit += '}'; i++; continue }
    if (c !== '{') { lit += c; continue }
    const end = text.indexOf('}', i)
    if (end === -1) throw new Error(`an unclosed "{" at ${i} (write "{{" for a literal brace)`)
    const name = text.slice(i + 1, end)
    let fn: ((ctx: PlaceholderContext) => string) | undefined = VARIABLES[name]
    if (fn === undefined && name.startsWith('env.')) {
      const value = process.env[name.slice(4)]
      if (value === undefined) throw new Error(`{${name}}: environment variable ${name.slice(4)} is not set`)
      lit += value
      i = end
      continue
    }
    if (fn === undefined && /^[1-9]$/.test(name)) {
      if (!captures) throw new Error(`{${name}}: capture groups exist only with a "match" regex`)
      const n = Number(name)
      fn = (ctx) => ctx.groups?.[n] ?? ''
    }
    if (fn === undefined) throw new Error(`unknown placeholder {${name}}; known: ${PLACEHOLDERS.join(', ')}`)
    if (lit !== '') parts.push(lit)
    lit = ''
    parts.push(fn)
    i = end
  }
  if (lit !== '') parts.push(lit)
  if (parts.every((p) => typeof p === 'string')) {
    const literal = parts.join('')
    return { literal, render: () => literal }
  }
  return {
    literal: null,
    render: (ctx) => {
      let out = ''
      for (const p of parts) out += typeof p === 'string' ? p : p(ctx)
      return out
    }
  }
}

/**
 * Refuses regular expressions that can backtrack catastrophically on a crafted path: a repeated group that itself
 * holds a quantifier (`(a+)+`, `(.*){2,}`) or alternatives (`(a|aa)+`), the two shapes behind exponential
 * backtracking. Conservative: some safe patterns are refused too, and can always be written without the repeated
 * group. Returns an error message, or null when the pattern is acceptable.
 */
export function unsafeRegex (source: string): string | null {
  // Escapes and character classes are single characters here.
  const plain = source.replace(/\\./g, 'x').replace(/\[[^\]]*\]/g, 'x')
  const stack: { quantified: boolean, alternatives: boolean }[] = []
  for (let i = 0; i < plain.length; i++) {
    const c = plain[i]
    if (c === '(') stack.push({ quantified: false, alternatives: false })
    else if (c === '|' && stack.length > 0) stack[stack.length - 1].alternatives = true
    else if (c === ')') {
      const inner = stack.pop() ?? { quantified: false, alternatives: false }
      const next = plain[i + 1]
      const repeated = next === '*' || next === '+' || next === '{'
      if (repeated && inner.quantified) return 'a repeated group holding a quantifier can backtrack catastrophically: write the pattern without it'
      if (repeated && inner.alternatives) return 'a repeated group of alternatives can backtrack catastrophically: write the pattern without it'
      if ((inner.quantified || repeated) && stack.length > 0) stack[stack.length - 1].quantified = true
    } else if ((c === '*' || c === '+' || c === '{') && stack.length > 0) {
      stack[stack.length - 1].quantified = true
    }
  }
  return null
}
