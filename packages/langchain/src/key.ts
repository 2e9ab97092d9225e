import { type RequestProfile, type SemanticSplit, defineProfile } from '@strata-cache/core';

/**
 * What a LangChain lookup is keyed on: the model's settings (parsed from the `llmString`
 * LangChain builds with `_getSerializedCacheKeyParametersForCall`) and the prompt string.
 */
export interface LangChainKeyRequest {
  /** The llmString's `name:JSON` entries, credentials removed. */
  readonly llm: Record<string, unknown>;
  /** The prompt as LangChain renders it (`System: …\nHuman: …` for chat models). */
  readonly prompt: string;
}

/**
 * Normalised field names (lower case, `_`/`-` removed) ending like this are credentials.
 * LangChain's llmString carries the client's settings — ChatOpenAI's includes `apiKey` in
 * clear — and a cache key must neither depend on (rotate the key, lose the cache) nor contain one.
 */
const CREDENTIAL_SUFFIXES = [
  'apikey',
  'secret',
  'password',
  'authorization',
  'accesstoken',
  'authtoken',
  'bearertoken',
  'sessiontoken',
  'credential',
  'credentials',
];

/** True when an llmString field holds a credential (never part of a key). */
export function isCredentialField(name: string): boolean {
  const n = name.toLowerCase().replace(/[_-]/g, '');
  return CREDENTIAL_SUFFIXES.some((s) => n.endsWith(s));
}

/**
 * Parses LangChain's llmString (`a:1,b:"x",c:{...}` — entries sorted, values JSON) into an
 * object, dropping credential fields and `ignored` ones. Returns undefined when the string
 * does not have that form.
 */
export function parseLlmString(llmString: string, ignored: ReadonlySet<string> = new Set()): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  let i = 0;
  while (i < llmString.length) {
    const colon = llmString.indexOf(':', i);
    if (colon <= i) return undefined;
    const name = llmString.slice(i, colon);
    if (!/^[A-Za-z_$][\w$.-]*$/.test(name)) return undefined;
    const end = jsonValueEnd(llmString, colon + 1);
    if (end < 0) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(llmString.slice(colon + 1, end));
    } catch {
      return undefined;
    }
    if (!isCredentialField(name) && !ignored.has(name)) out[name] = stripCredentials(value);
    if (end === llmString.length) break;
    if (llmString[end] !== ',') return undefined;
    i = end + 1;
  }
  return out;
}

/** Nested settings objects (`configuration`, `clientOptions`) can carry credentials too. */
function stripCredentials(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(stripCredentials);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!isCredentialField(k)) out[k] = stripCredentials(v);
  return out;
}

/** Index just past the JSON value starting at `start`, or -1. */
function jsonValueEnd(s: string, start: number): number {
  const c = s[start];
  if (c === '"') {
    for (let i = start + 1; i < s.length; i++) {
      if (s[i] === '\\') i++;
      else if (s[i] === '"') return i + 1;
    }
    return -1;
  }
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let i = start; i < s.length; i++) {
      const ch = s[i];
      if (ch === '"') {
        i++;
        while (i < s.length && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
      } else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return -1;
  }
  // number, true, false, null: up to the next top-level comma
  const comma = s.indexOf(',', start);
  return comma < 0 ? s.length : comma;
}

/**
 * LangChain renders image, audio, video and file blocks as bare placeholders (`[image]`) in
 * the prompt it hands a cache: two prompts that differ only in their attachments would share
 * a key. Such prompts are never cached.
 */
const OPAQUE_BLOCK = /\[(?:image|audio|video|file|text-plain file)\]/;

/** True when the prompt carries a placeholder for content LangChain did not render (see above). */
export function hasUnrenderedContent(prompt: string): boolean {
  return OPAQUE_BLOCK.test(prompt);
}

/** The key request of one `lookup(prompt, llmString)` / `update(...)`. */
export function keyRequestOf(prompt: string, llmString: string, ignoredFields: ReadonlySet<string> = new Set()): LangChainKeyRequest {
  const llm = parseLlmString(llmString, ignoredFields);
  // An llmString of another shape is keyed as one opaque value (it is only ever hashed).
  return { llm: llm ?? { llmString }, prompt };
}

const ROLES = ['Human', 'AI', 'System', 'Tool', 'Function'];

/**
 * Semantic split of a LangChain prompt. For a text LLM the whole prompt is compared. For a chat
 * model the prompt is LangChain's rendering (`System: …\nHuman: …\nAI: …`): the text after the
 * last `Human: ` line is compared when no other role follows it; everything before it and the
 * model's settings must match exactly. Anything else (a prompt ending in an AI or tool turn)
 * is matched by exact key only.
 */
export function langChainSemanticSplit(request: unknown): SemanticSplit | undefined {
  const r = request as Partial<LangChainKeyRequest> | null;
  if (!r || typeof r.prompt !== 'string' || typeof r.llm !== 'object' || r.llm === null) return undefined;
  const prompt = r.prompt;
  const kind = r.llm['_model'];
  if (kind === 'base_llm') return prompt.trim() === '' ? undefined : { text: prompt, context: { llm: r.llm } };
  if (kind !== 'base_chat_model') return undefined;
  const last = prompt.lastIndexOf('\nHuman: ');
  const at = last >= 0 ? last + 1 : prompt.startsWith('Human: ') ? 0 : -1;
  if (at < 0) return undefined;
  const text = prompt.slice(at + 'Human: '.length);
  if (text.trim() === '' || ROLES.some((role) => text.includes(`\n${role}: `))) return undefined;
  return { text, context: { llm: r.llm, history: prompt.slice(0, at) } };
}

/** Temperature 0 or a seed in the model's settings (an absent temperature is the provider's default, not 0). */
function isDeterministic(request: unknown): boolean {
  const llm = (request as Partial<LangChainKeyRequest> | null)?.llm;
  if (!llm) return false;
  return llm['temperature'] === 0 || (llm['seed'] !== undefined && llm['seed'] !== null);
}

function modelOf(request: unknown): string | undefined {
  const llm = (request as Partial<LangChainKeyRequest> | null)?.llm;
  for (const k of ['model', 'model_name', 'modelName']) if (typeof llm?.[k] === 'string') return llm[k] as string;
  return undefined;
}

/** How Strata fingerprints LangChain cache lookups. */
export const langChainProfile: RequestProfile = defineProfile({
  id: 'langchain.cache.v1',
  semanticSplit: langChainSemanticSplit,
  isDeterministic,
  model: modelOf,
});
