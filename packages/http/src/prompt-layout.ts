// Prompt layout for the provider's own prompt cache. Providers cache the longest prompt prefix
// they have seen before (OpenAI automatically, from 1,024 tokens, in 128-token steps; Anthropic
// up to the `cache_control` breakpoints a request marks) and bill it at a discount. A prefix only
// repeats if everything that is the same on every request comes first: static instructions and
// tools, then the conversation so far (it only grows), then what changes on every request
// (retrieved documents, the customer's record, today's date), then the user's turn.
import { createHash } from 'node:crypto';
import { InvalidOptionError } from '@strata-cache/core';

/** The parts of a prompt, by how often they change. The adapters' layout helpers order them. */
export interface PromptParts<Tool = unknown, Message = unknown> {
  /** Static instructions: the same on every request of this prompt (role, rules, examples). */
  readonly instructions: string | readonly string[];
  /** Static tool definitions, in the provider's own shape. @default [] */
  readonly tools?: readonly Tool[];
  /**
   * The conversation so far, oldest first, in the provider's own message shape. It only grows
   * from one turn to the next, so it stays a cached prefix across turns. @default []
   */
  readonly history?: readonly Message[];
  /**
   * What changes from request to request (retrieved documents, the user's account, the date):
   * after everything that repeats, right before the user turn. @default []
   */
  readonly context?: string | readonly string[];
  /** The user's turn. */
  readonly user: string;
}

const PART_KEYS = ['instructions', 'tools', 'history', 'context', 'user'] as const satisfies ReadonlyArray<keyof PromptParts>;

/** Checks `parts` (unknown keys, types); throws `InvalidOptionError` naming the package and the field. */
export function checkPromptParts(packageName: string, parts: PromptParts): void {
  const fail = (field: string, what: string) => {
    throw new InvalidOptionError(`${packageName}: prompt layout: "${field}" ${what}`, { field });
  };
  if (typeof parts !== 'object' || parts === null)
    throw new InvalidOptionError(`${packageName}: prompt layout needs { instructions, user, tools?, history?, context? }`);
  for (const k of Object.keys(parts)) if (!(PART_KEYS as readonly string[]).includes(k)) fail(k, `is not a prompt part (known: ${PART_KEYS.join(', ')})`);
  const texts = (v: unknown) => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
  if (!texts(parts.instructions) || textsOf(parts.instructions).every((t) => t.trim() === ''))
    fail('instructions', 'must be a non-empty string or an array of strings');
  if (typeof parts.user !== 'string' || parts.user === '') fail('user', 'must be a non-empty string');
  if (parts.context !== undefined && !texts(parts.context)) fail('context', 'must be a string or an array of strings');
  for (const k of ['tools', 'history'] as const) if (parts[k] !== undefined && !Array.isArray(parts[k])) fail(k, 'must be an array');
}

/** A string or strings as a list. */
export function textsOf(v: string | readonly string[] | undefined): string[] {
  return v === undefined ? [] : typeof v === 'string' ? [v] : [...v];
}

/**
 * A short stable id of the static prefix (instructions and tools): the default routing key for
 * the provider's cache (OpenAI `prompt_cache_key`), so requests sharing a prefix go to the same
 * cache. It names no content.
 */
export function staticPrefixKey(parts: Pick<PromptParts, 'instructions' | 'tools'>): string {
  const h = createHash('sha256')
    .update(JSON.stringify([textsOf(parts.instructions), parts.tools ?? []]))
    .digest('base64url');
  return `strata-${h.slice(0, 22)}`;
}
