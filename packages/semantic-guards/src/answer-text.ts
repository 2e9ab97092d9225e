/**
 * The text of a cached answer: what a person would read. Knows the shapes Strata's adapters store
 * (OpenAI chat completions and responses, Anthropic messages, plain strings); anything else
 * JSON-like is read as its JSON text. Selectors compare answers by it (`sameValue`), and
 * `@strata-cache/semantic-calibration`'s answer judges read it.
 */

/** Longest answer text handed to a judge (characters); the rest is cut. */
export const MAX_ANSWER_CHARS = 4_000;

/**
 * The readable text of a stored or fresh answer, or undefined when it has none (binary data,
 * an empty answer). Tool calls count as text (their name and arguments): two answers calling
 * different tools are different answers.
 */
export function answerTextOf(value: unknown, maxChars = MAX_ANSWER_CHARS): string | undefined {
  const parts: string[] = [];
  collect(value, parts, 0);
  let text = parts.join('\n').trim();
  if (text === '') {
    if (value === null || value === undefined || typeof value === 'function' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return undefined;
    try {
      text = JSON.stringify(value) ?? '';
    } catch {
      return undefined;
    }
    if (text === '' || text === '{}' || text === '[]' || text === '""') return undefined;
  }
  return text.length > maxChars ? text.slice(0, maxChars) : text;
}

function collect(v: unknown, out: string[], depth: number): void {
  if (depth > 6 || v === null || v === undefined) return;
  if (typeof v === 'string') {
    out.push(v);
    return;
  }
  if (typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return;
  if (Array.isArray(v)) {
    for (const x of v) collect(x, out, depth + 1);
    return;
  }
  const o = v as Record<string, unknown>;
  // OpenAI chat completion / legacy completion.
  if (Array.isArray(o['choices'])) {
    for (const c of o['choices'] as unknown[]) {
      if (!c || typeof c !== 'object') continue;
      const ch = c as Record<string, unknown>;
      if (ch['message'] && typeof ch['message'] === 'object') message(ch['message'] as Record<string, unknown>, out, depth);
      else if (ch['delta'] && typeof ch['delta'] === 'object') message(ch['delta'] as Record<string, unknown>, out, depth);
      else if (typeof ch['text'] === 'string') out.push(ch['text']);
    }
    return;
  }
  // OpenAI Responses API.
  if (typeof o['output_text'] === 'string' && o['output_text'] !== '') {
    out.push(o['output_text']);
    return;
  }
  if (Array.isArray(o['output'])) {
    for (const item of o['output'] as unknown[]) {
      if (!item || typeof item !== 'object') continue;
      const it = item as Record<string, unknown>;
      if (Array.isArray(it['content'])) contentParts(it['content'] as unknown[], out, depth);
      else if (it['type'] === 'function_call') out.push(`${String(it['name'] ?? '')}(${String(it['arguments'] ?? '')})`);
    }
    return;
  }
  // Anthropic message, or a message-like object.
  if ('content' in o || 'tool_calls' in o) {
    message(o, out, depth);
    return;
  }
  for (const field of ['text', 'answer', 'output', 'result', 'response']) {
    if (typeof o[field] === 'string') {
      out.push(o[field] as string);
      return;
    }
  }
}

function message(m: Record<string, unknown>, out: string[], depth: number): void {
  const c = m['content'];
  if (typeof c === 'string') out.push(c);
  else if (Array.isArray(c)) contentParts(c, out, depth);
  if (Array.isArray(m['tool_calls'])) {
    for (const t of m['tool_calls'] as unknown[]) {
      const f = t && typeof t === 'object' ? ((t as Record<string, unknown>)['function'] as Record<string, unknown> | undefined) : undefined;
      if (f && typeof f === 'object') out.push(`${String(f['name'] ?? '')}(${String(f['arguments'] ?? '')})`);
    }
  }
  if (typeof m['refusal'] === 'string') out.push(m['refusal']);
}

function contentParts(parts: unknown[], out: string[], depth: number): void {
  for (const p of parts) {
    if (typeof p === 'string') out.push(p);
    else if (p && typeof p === 'object') {
      const q = p as Record<string, unknown>;
      if (typeof q['text'] === 'string') out.push(q['text']);
      else if (q['type'] === 'tool_use') out.push(`${String(q['name'] ?? '')}(${safeJson(q['input'])})`);
      else collect(q['content'], out, depth + 1);
    }
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return '';
  }
}
