import { InvalidOptionError } from '@strata-cache/core';
import type { CacheEntry, RequestProfile, Scope, ScopeInput } from '@strata-cache/core';
import { type PatternInput, type Template, compilePattern, compileTemplate, escapeRegExp } from './patterns.js';

const PKG = '@strata-cache/invalidation';

/** What a rule sees. `entry` is present at write and read time, absent when a request is first decided. */
export interface RuleContext {
  readonly phase: 'request' | 'write' | 'read';
  readonly request: unknown;
  readonly profile: RequestProfile;
  readonly scope: Scope;
  /** The prompt text (see `promptText` option). */
  readonly prompt: string | undefined;
  /** Requested model (from the request) and, once known, the model that answered. */
  readonly models: readonly string[];
  /** Tags of the entry (write/read), empty when deciding a request. */
  readonly tags: readonly string[];
  readonly entry?: CacheEntry | undefined;
}

/** Conditions a rule applies under; all given conditions must hold. No condition = every request. */
export interface Match {
  /** Requested or answering model: exact name, RegExp, or a list of either. */
  model?: string | RegExp | ReadonlyArray<string | RegExp>;
  /** A tenant id, or `{ tenant?, namespace? }`. */
  scope?: string | { tenant?: string; namespace?: string };
  /** The entry carries this tag (or any of these). Evaluated at write and read time only. */
  tag?: string | readonly string[];
  /** RegExp (or its string form `/src/flags`) over the prompt text. */
  prompt?: PatternInput;
  /** Request profile id (`chat`, `openai.chat`, `generic`, ...). */
  profile?: string | readonly string[];
  /** Any other condition. */
  when?: (ctx: RuleContext) => boolean;
}

/** Entries matching `match` live at most `maxAgeMs`: capped TTL at write, hits older than that rejected at read. */
export interface MaxAgeRule {
  readonly type: 'maxAge';
  readonly maxAgeMs: number;
  readonly match?: Match;
  readonly name?: string;
}

/** Tag templates may use {model}, {tenant}, {namespace}, {profile}. */
export type TagRuleTags = readonly string[] | ((ctx: RuleContext) => readonly string[] | undefined);

/** Attaches tags to matching entries when they are written. */
export interface TagRule {
  readonly type: 'tag';
  readonly tags: TagRuleTags;
  readonly match?: Match;
  readonly name?: string;
}

/** Matching requests are not cached (`skip`: no read, no write) or only for a short TTL. */
export interface NoCacheRule {
  readonly type: 'noCache';
  readonly match?: Match;
  /** @default 'skip' */
  readonly action?: 'skip' | { readonly ttlMs: number };
  readonly name?: string;
  /** Shown in `miss`/`skipWrite` events. @default the rule's name */
  readonly reason?: string;
}

/** What an event purges. */
export type InvalidationTarget =
  | string
  | { readonly tag: string; readonly scope?: ScopeInput }
  | { readonly scope: ScopeInput; readonly mode?: 'version' | 'clear' }
  | { readonly key: unknown; readonly scope?: ScopeInput; readonly profile?: RequestProfile };

/**
 * Tag templates (`'product:{id}'`, filled from the event's data), or a function of the data
 * returning tags (literal strings) and/or other targets.
 */
export type EventTargets =
  | readonly string[]
  | ((
      data: Record<string, unknown>,
    ) => InvalidationTarget | readonly InvalidationTarget[] | undefined | Promise<InvalidationTarget | readonly InvalidationTarget[] | undefined>);

export interface EventRule {
  readonly type: 'event';
  readonly event: string;
  readonly targets: EventTargets;
  readonly name?: string;
}

/**
 * Hits answered by a model other than the scope's current one are stale. The current model
 * is what `trackConfig({ model })` set, else the newest answering model this process stored
 * for the same requested model (an alias such as `gpt-4o` moving to a new snapshot).
 */
export interface StaleAfterModelChangeRule {
  readonly type: 'staleAfterModelChange';
  readonly match?: Match;
  readonly name?: string;
}

export type InvalidationRule = MaxAgeRule | TagRule | NoCacheRule | EventRule | StaleAfterModelChangeRule;

// ------------------------------------------------------------------ builders

/** `maxAge(72 * 3_600_000, { tag: 'faq' })` */
export function maxAge(maxAgeMs: number, match?: Match, name?: string): MaxAgeRule {
  return { type: 'maxAge', maxAgeMs, ...(match ? { match } : {}), ...(name ? { name } : {}) };
}

/** `tagWhen({ prompt: /product/i }, ['topic:product'])` */
export function tagWhen(match: Match, tags: TagRuleTags, name?: string): TagRule {
  return { type: 'tag', match, tags, ...(name ? { name } : {}) };
}

/** `noCache({ model: /dall-e/ })`, `noCache({ prompt: /random/i }, { ttlMs: 60_000 })` */
export function noCache(match: Match, action: NoCacheRule['action'] = 'skip', name?: string): NoCacheRule {
  return { type: 'noCache', match, action, ...(name ? { name } : {}) };
}

/** `onEvent('product_updated', ['product:{id}', 'topic:product'])` */
export function onEvent(event: string, targets: EventTargets): EventRule {
  return { type: 'event', event, targets };
}

export function staleAfterModelChange(match?: Match): StaleAfterModelChangeRule {
  return { type: 'staleAfterModelChange', ...(match ? { match } : {}), name: 'stale-after-model-change' };
}

export interface CreativeRequestsOptions {
  /** Temperature at or above which a request without a seed is "creative". @default 0.7 */
  minTemperature?: number | undefined;
  /** Temperature assumed when the request sets none (OpenAI and Anthropic default to 1). @default 1 */
  defaultTemperature?: number | undefined;
  /** @default 'skip' */
  action?: NoCacheRule['action'] | undefined;
}

/** Creative requests (high temperature, no seed) want a fresh answer each time. */
export function creativeRequests(options: CreativeRequestsOptions = {}): NoCacheRule {
  checkKnown(options, ['minTemperature', 'defaultTemperature', 'action'], 'creativeRequests()');
  const min = options.minTemperature ?? 0.7;
  const dflt = options.defaultTemperature ?? 1;
  if (typeof min !== 'number' || !Number.isFinite(min) || min < 0)
    throw new InvalidOptionError(`${PKG}: creativeRequests() option "minTemperature" must be a number >= 0`, { field: 'minTemperature' });
  if (typeof dflt !== 'number' || !Number.isFinite(dflt) || dflt < 0)
    throw new InvalidOptionError(`${PKG}: creativeRequests() option "defaultTemperature" must be a number >= 0`, { field: 'defaultTemperature' });
  return {
    type: 'noCache',
    name: 'creative',
    reason: `creative request (temperature >= ${min} without a seed)`,
    action: options.action ?? 'skip',
    match: {
      when: ({ request }) => {
        if (typeof request !== 'object' || request === null) return false;
        const r = request as Record<string, unknown>;
        if (r['seed'] !== undefined && r['seed'] !== null) return false;
        const t = typeof r['temperature'] === 'number' ? (r['temperature'] as number) : dflt;
        return t >= min;
      },
    },
  };
}

/** Words and phrases whose answer changes with time. Matched as whole words, case-insensitively. */
export const DEFAULT_TIME_SENSITIVE_WORDS: readonly string[] = Object.freeze([
  'today',
  'tonight',
  'tomorrow',
  'yesterday',
  'now',
  'right now',
  'currently',
  'current',
  'latest',
  'this week',
  'this month',
  'this year',
  'breaking news',
  'news',
  'weather',
  'forecast',
  'latest price',
  'current price',
  'stock price',
  'exchange rate',
  'live score',
  'trending',
]);

export interface TimeSensitivePromptsOptions {
  /** Replaces the default word list. @default DEFAULT_TIME_SENSITIVE_WORDS */
  words?: readonly string[] | undefined;
  /** Added to the word list. */
  extraWords?: readonly string[] | undefined;
  /** Extra patterns over the prompt text. */
  patterns?: readonly PatternInput[] | undefined;
  /** @default 'skip' */
  action?: NoCacheRule['action'] | undefined;
}

/** Prompts about today, now, the latest price, the weather... are not cached (or only briefly). */
export function timeSensitivePrompts(options: TimeSensitivePromptsOptions = {}): NoCacheRule {
  checkKnown(options, ['words', 'extraWords', 'patterns', 'action'], 'timeSensitivePrompts()');
  const words = [...(options.words ?? DEFAULT_TIME_SENSITIVE_WORDS), ...(options.extraWords ?? [])];
  for (const [i, w] of words.entries()) {
    if (typeof w !== 'string' || w.trim() === '')
      throw new InvalidOptionError(`${PKG}: timeSensitivePrompts() words[${i}] must be a non-empty string`, { field: `words[${i}]` });
  }
  const regexes: RegExp[] = [];
  if (words.length > 0) {
    const alternatives = [...new Set(words.map((w) => w.trim().toLowerCase()))]
      .sort((a, b) => b.length - a.length)
      .map((w) => escapeRegExp(w).replace(/\s+/g, '\\s+'));
    regexes.push(new RegExp(`(?<![\\p{L}\\p{N}])(?:${alternatives.join('|')})(?![\\p{L}\\p{N}])`, 'iu'));
  }
  for (const [i, p] of (options.patterns ?? []).entries()) regexes.push(compilePattern(p, `timeSensitivePrompts() patterns[${i}]`));
  return {
    type: 'noCache',
    name: 'time-sensitive',
    reason: 'time-sensitive prompt',
    action: options.action ?? 'skip',
    match: { when: ({ prompt }) => prompt !== undefined && regexes.some((r) => r.test(prompt)) },
  };
}

// ------------------------------------------------------------------ compiled forms

export interface CompiledMatch {
  /** Whether the match needs entry tags (so it cannot be decided before the write). */
  readonly needsTags: boolean;
  test(ctx: RuleContext): boolean;
}

const TAG_TEMPLATE_PARAMS = new Set(['model', 'tenant', 'namespace', 'profile']);

export type CompiledRule =
  | { readonly type: 'maxAge'; readonly name: string; readonly maxAgeMs: number; readonly match: CompiledMatch }
  | { readonly type: 'tag'; readonly name: string; readonly match: CompiledMatch; readonly tags: (ctx: RuleContext) => string[] }
  | { readonly type: 'noCache'; readonly name: string; readonly match: CompiledMatch; readonly ttlMs: number | undefined; readonly reason: string }
  | {
      readonly type: 'event';
      readonly name: string;
      readonly event: string;
      readonly templates?: readonly Template[];
      readonly fn?: (data: Record<string, unknown>) => unknown;
    }
  | { readonly type: 'staleAfterModelChange'; readonly name: string; readonly match: CompiledMatch };

export function checkKnown(obj: unknown, known: readonly string[], where: string): void {
  if (typeof obj !== 'object' || obj === null) throw new InvalidOptionError(`${PKG}: ${where} needs an options object`);
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) throw new InvalidOptionError(`${PKG}: ${where} has an unknown option "${k}" (known: ${known.join(', ')})`, { field: k });
  }
}

function positiveMs(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new InvalidOptionError(`${PKG}: ${field} must be a positive number of milliseconds`, { field });
  return v;
}

export function compileMatch(match: Match | undefined, where: string): CompiledMatch {
  if (match === undefined) return { needsTags: false, test: () => true };
  checkKnown(match, ['model', 'scope', 'tag', 'prompt', 'profile', 'when'], `${where}.match`);
  const tests: Array<(ctx: RuleContext) => boolean> = [];
  if (match.model !== undefined) {
    const list = Array.isArray(match.model) ? match.model : [match.model];
    if (list.length === 0) throw new InvalidOptionError(`${PKG}: ${where}.match.model is an empty list`, { field: 'model' });
    const ms = (list as Array<string | RegExp>).map((m, i) => {
      if (typeof m === 'string' && m !== '') return (s: string) => s === m;
      if (m instanceof RegExp) {
        const r = compilePattern(m, `${where}.match.model[${i}]`);
        return (s: string) => r.test(s);
      }
      throw new InvalidOptionError(`${PKG}: ${where}.match.model must be a model name, a RegExp, or a list of them`, { field: 'model' });
    });
    tests.push((ctx) => ctx.models.some((m) => ms.some((f) => f(m))));
  }
  if (match.scope !== undefined) {
    const s = typeof match.scope === 'string' ? { tenant: match.scope } : match.scope;
    if (typeof s !== 'object' || s === null)
      throw new InvalidOptionError(`${PKG}: ${where}.match.scope must be a tenant id or { tenant?, namespace? }`, { field: 'scope' });
    checkKnown(s, ['tenant', 'namespace'], `${where}.match.scope`);
    for (const f of ['tenant', 'namespace'] as const) {
      if (s[f] !== undefined && (typeof s[f] !== 'string' || s[f] === ''))
        throw new InvalidOptionError(`${PKG}: ${where}.match.scope.${f} must be a non-empty string`, { field: `scope.${f}` });
    }
    tests.push((ctx) => (s.tenant === undefined || ctx.scope.tenant === s.tenant) && (s.namespace === undefined || ctx.scope.namespace === s.namespace));
  }
  if (match.profile !== undefined) {
    const ids = typeof match.profile === 'string' ? [match.profile] : [...match.profile];
    if (ids.length === 0 || ids.some((p) => typeof p !== 'string' || p === ''))
      throw new InvalidOptionError(`${PKG}: ${where}.match.profile must be a profile id or a list of them`, { field: 'profile' });
    tests.push((ctx) => ids.includes(ctx.profile.id));
  }
  if (match.prompt !== undefined) {
    const r = compilePattern(match.prompt, `${where}.match.prompt`);
    tests.push((ctx) => ctx.prompt !== undefined && r.test(ctx.prompt));
  }
  const needsTags = match.tag !== undefined;
  if (match.tag !== undefined) {
    const tags = typeof match.tag === 'string' ? [match.tag] : [...match.tag];
    if (tags.length === 0 || tags.some((t) => typeof t !== 'string' || t === ''))
      throw new InvalidOptionError(`${PKG}: ${where}.match.tag must be a tag or a list of tags`, { field: 'tag' });
    tests.push((ctx) => ctx.tags.some((t) => tags.includes(t)));
  }
  if (match.when !== undefined) {
    if (typeof match.when !== 'function') throw new InvalidOptionError(`${PKG}: ${where}.match.when must be a function`, { field: 'when' });
    tests.push(match.when);
  }
  return { needsTags, test: (ctx) => tests.every((t) => t(ctx)) };
}

/** Validates one rule now, so a bad pattern or template fails at registration, not on traffic. */
export function compileRule(rule: InvalidationRule, index: number, knownEvents: ReadonlyMap<string, readonly string[] | undefined> | undefined): CompiledRule {
  const where = `rules[${index}]`;
  if (typeof rule !== 'object' || rule === null) throw new InvalidOptionError(`${PKG}: ${where} must be a rule object`, { field: where });
  const name = rule.name ?? `${rule.type}#${index}`;
  if (typeof name !== 'string' || name === '') throw new InvalidOptionError(`${PKG}: ${where}.name must be a non-empty string`, { field: `${where}.name` });
  switch (rule.type) {
    case 'maxAge':
      checkKnown(rule, ['type', 'maxAgeMs', 'match', 'name'], where);
      return { type: 'maxAge', name, maxAgeMs: positiveMs(rule.maxAgeMs, `${where}.maxAgeMs`), match: compileMatch(rule.match, where) };
    case 'tag': {
      checkKnown(rule, ['type', 'tags', 'match', 'name'], where);
      const match = compileMatch(rule.match, where);
      if (typeof rule.tags === 'function') {
        const fn = rule.tags;
        return { type: 'tag', name, match, tags: (ctx) => (fn(ctx) ?? []).filter((t): t is string => typeof t === 'string' && t !== '') };
      }
      if (!Array.isArray(rule.tags) || rule.tags.length === 0)
        throw new InvalidOptionError(`${PKG}: ${where}.tags must be a non-empty list of tags or a function`, { field: `${where}.tags` });
      const templates = rule.tags.map((t, i) => compileTemplate(t, `${where}.tags[${i}]`));
      for (const t of templates) {
        for (const p of t.params) {
          if (!TAG_TEMPLATE_PARAMS.has(p)) {
            throw new InvalidOptionError(
              `${PKG}: ${where}: tag template ${JSON.stringify(t.source)} uses {${p}}; tag rules can fill {model}, {tenant}, {namespace}, {profile}`,
              { field: `${where}.tags` },
            );
          }
        }
      }
      return {
        type: 'tag',
        name,
        match,
        tags: (ctx) => {
          const data = { model: ctx.models[ctx.models.length - 1], tenant: ctx.scope.tenant, namespace: ctx.scope.namespace, profile: ctx.profile.id };
          const out: string[] = [];
          for (const t of templates) {
            try {
              out.push(t.fill(data, where));
            } catch {
              // {model} on a request without a model: that tag does not apply
            }
          }
          return out;
        },
      };
    }
    case 'noCache': {
      checkKnown(rule, ['type', 'match', 'action', 'name', 'reason'], where);
      const action = rule.action ?? 'skip';
      let ttlMs: number | undefined;
      if (action !== 'skip') {
        if (typeof action !== 'object' || action === null)
          throw new InvalidOptionError(`${PKG}: ${where}.action must be 'skip' or { ttlMs }`, { field: `${where}.action` });
        checkKnown(action, ['ttlMs'], `${where}.action`);
        ttlMs = positiveMs(action.ttlMs, `${where}.action.ttlMs`);
      }
      return { type: 'noCache', name, match: compileMatch(rule.match, where), ttlMs, reason: rule.reason ?? `rule ${name}` };
    }
    case 'event': {
      checkKnown(rule, ['type', 'event', 'targets', 'name'], where);
      return compileEventRule(rule.event, rule.targets, where, knownEvents, rule.name);
    }
    case 'staleAfterModelChange':
      checkKnown(rule, ['type', 'match', 'name'], where);
      return { type: 'staleAfterModelChange', name, match: compileMatch(rule.match, where) };
    default:
      throw new InvalidOptionError(
        `${PKG}: ${where} has unknown type ${JSON.stringify((rule as { type?: unknown }).type)} (known: maxAge, tag, noCache, event, staleAfterModelChange)`,
        { field: `${where}.type` },
      );
  }
}

export function compileEventRule(
  event: unknown,
  targets: unknown,
  where: string,
  knownEvents: ReadonlyMap<string, readonly string[] | undefined> | undefined,
  name?: string,
): CompiledRule & { type: 'event' } {
  if (typeof event !== 'string' || event === '')
    throw new InvalidOptionError(`${PKG}: ${where}: event name must be a non-empty string`, { field: `${where}.event` });
  if (knownEvents && !knownEvents.has(event)) {
    throw new InvalidOptionError(
      `${PKG}: ${where}: unknown event ${JSON.stringify(event)}; declared events are ${[...knownEvents.keys()].map((e) => JSON.stringify(e)).join(', ') || '(none)'} (option "events")`,
      { field: `${where}.event` },
    );
  }
  const ruleName = name ?? `event:${event}`;
  if (typeof targets === 'function') return { type: 'event', name: ruleName, event, fn: targets as (data: Record<string, unknown>) => unknown };
  if (!Array.isArray(targets) || targets.length === 0) {
    throw new InvalidOptionError(`${PKG}: ${where}: targets of event ${JSON.stringify(event)} must be a non-empty list of tag templates or a function`, {
      field: `${where}.targets`,
    });
  }
  const templates = targets.map((t, i) => compileTemplate(t, `${where}.targets[${i}]`));
  const fields = knownEvents?.get(event);
  if (fields) {
    for (const t of templates) {
      for (const p of t.params) {
        const root = p.split('.')[0]!;
        if (!fields.includes(root)) {
          throw new InvalidOptionError(
            `${PKG}: ${where}: template ${JSON.stringify(t.source)} reads {${p}}, but event ${JSON.stringify(event)} is declared with data fields ${fields.join(', ') || '(none)'}`,
            { field: `${where}.targets` },
          );
        }
      }
    }
  }
  return { type: 'event', name: ruleName, event, templates };
}
