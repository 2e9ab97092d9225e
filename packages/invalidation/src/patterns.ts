import { InvalidOptionError, InvalidRequestError, chatSemanticSplit, messageText } from '@strata-cache/core';
import type { RequestProfile } from '@strata-cache/core';

const PKG = '@strata-cache/invalidation';

/**
 * A RegExp, or its string form: `/source/flags` or a bare source. Compiled (and checked) once,
 * at registration. `g` and `y` are dropped: they make `test()` stateful across calls.
 */
export type PatternInput = RegExp | string;

export function compilePattern(input: PatternInput, field: string): RegExp {
  let source: string;
  let flags: string;
  if (input instanceof RegExp) {
    source = input.source;
    flags = input.flags;
  } else if (typeof input === 'string') {
    if (input === '') throw new InvalidOptionError(`${PKG}: ${field} is an empty pattern (it would match every prompt); use a RegExp or omit it`, { field });
    const m = /^\/([\s\S]+)\/([a-z]*)$/.exec(input);
    source = m ? m[1]! : input;
    flags = m ? m[2]! : '';
  } else {
    throw new InvalidOptionError(`${PKG}: ${field} must be a RegExp or a string pattern, got ${typeof input}`, { field });
  }
  try {
    return new RegExp(source, flags.replace(/[gy]/g, ''));
  } catch (error) {
    throw new InvalidOptionError(`${PKG}: ${field} is not a valid regular expression: ${(error as Error).message}`, { field, cause: error });
  }
}

/** Escapes a literal word for use inside a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A compiled `'product:{id}'` template. */
export interface Template {
  readonly source: string;
  /** Data fields it reads, dotted paths (`{user.id}`). */
  readonly params: readonly string[];
  fill(data: unknown, where: string): string;
}

const PARAM = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

/** Parses `{name}` placeholders; a stray or unclosed brace or an odd name is an error now, not at emit time. */
export function compileTemplate(source: unknown, field: string): Template {
  if (typeof source !== 'string' || source === '') {
    throw new InvalidOptionError(`${PKG}: ${field} must be a non-empty tag template string such as "product:{id}"`, { field });
  }
  const parts: Array<string | { param: string }> = [];
  let i = 0;
  let literal = '';
  while (i < source.length) {
    const c = source[i]!;
    if (c === '{') {
      const end = source.indexOf('}', i + 1);
      if (end < 0) throw new InvalidOptionError(`${PKG}: ${field} template ${JSON.stringify(source)} has an unclosed "{" at position ${i}`, { field });
      const name = source.slice(i + 1, end).trim();
      if (!PARAM.test(name)) {
        throw new InvalidOptionError(`${PKG}: ${field} template ${JSON.stringify(source)} has a bad placeholder {${name}} (use {field} or {field.sub})`, {
          field,
        });
      }
      if (literal) parts.push(literal);
      literal = '';
      parts.push({ param: name });
      i = end + 1;
      continue;
    }
    if (c === '}') throw new InvalidOptionError(`${PKG}: ${field} template ${JSON.stringify(source)} has a stray "}" at position ${i}`, { field });
    literal += c;
    i++;
  }
  if (literal) parts.push(literal);
  const params = parts.filter((p): p is { param: string } => typeof p !== 'string').map((p) => p.param);
  return {
    source,
    params,
    fill(data: unknown, where: string): string {
      if (params.length === 0) return source;
      let out = '';
      for (const p of parts) {
        if (typeof p === 'string') {
          out += p;
          continue;
        }
        const v = readPath(data, p.param);
        if (v === undefined || v === null || v === '') {
          throw new InvalidRequestError(`${PKG}: ${where}: template ${JSON.stringify(source)} needs data.${p.param}, which is missing`, { field: p.param });
        }
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'bigint') {
          throw new InvalidRequestError(
            `${PKG}: ${where}: template ${JSON.stringify(source)} needs data.${p.param} to be a string or number, got ${typeof v}`,
            { field: p.param },
          );
        }
        out += String(v);
      }
      return out;
    },
  };
}

export function readPath(data: unknown, path: string): unknown {
  let cur: unknown = data;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * The prompt text rules match: the profile's semantic text (last user turn) when it has one,
 * else the text of every message, else an `input` / `prompt` string.
 */
export function defaultPromptText(request: unknown, profile: RequestProfile): string | undefined {
  if (profile.semanticSplit === chatSemanticSplit) {
    // Same text as chatSemanticSplit, without building the context object it also returns.
    const messages = (request as { messages?: unknown } | null)?.messages;
    if (Array.isArray(messages) && messages.length > 0) {
      const last = messages[messages.length - 1] as { role?: unknown; content?: unknown } | null;
      if (last && last.role === 'user') {
        const text = messageText(last.content);
        if (text !== undefined && text.trim() !== '') return text;
      }
    }
  }
  try {
    const split = profile.semanticSplit?.(request);
    if (split) return split.text;
  } catch {
    // a profile that cannot split this request: fall through to the generic shapes
  }
  if (typeof request !== 'object' || request === null) return typeof request === 'string' ? request : undefined;
  const req = request as Record<string, unknown>;
  const messages = req['messages'];
  if (Array.isArray(messages)) {
    const texts: string[] = [];
    for (const m of messages) {
      const t = messageText((m as { content?: unknown })?.content);
      if (t) texts.push(t);
    }
    if (texts.length > 0) return texts.join('\n');
  }
  for (const f of ['input', 'prompt']) {
    if (typeof req[f] === 'string') return req[f] as string;
  }
  return undefined;
}
