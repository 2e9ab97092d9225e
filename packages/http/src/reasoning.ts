import type { RequestProfile } from '@strata-cache/core';

/** True when `model` belongs to one of `families` (name prefixes; `'*'` is every model). */
export function inModelFamilies(model: unknown, families: readonly string[]): boolean {
  if (families.length === 0 || typeof model !== 'string') return false;
  for (const f of families) if (f === '*' || model.startsWith(f)) return true;
  return false;
}

const warned = new Set<string>();

/**
 * How a profile treats reasoning requests, which cannot pin their sampling. `isReasoning` says
 * whether a request is one; `families` are the model families the user opted in with
 * `reasoningModels`.
 */
export interface ReasoningRule {
  readonly packageName: string;
  readonly isReasoning: (request: Record<string, unknown>) => boolean;
  readonly families: readonly string[];
}

/**
 * `profile` with the reasoning rule applied to `isDeterministic` (what core's `'deterministic'`
 * policy asks): a reasoning request to an opted-in model family counts as repeatable; one to any
 * other model does not, and the first such request of each model in this process emits a
 * `process` warning (code `STRATA_REASONING_NOT_CACHED`) naming the option that opts it in —
 * so the rule is never applied silently. Other requests keep the profile's own rule.
 * The profile id is unchanged: the rule decides what is cached, never how it is keyed.
 */
export function withReasoningRule(profile: RequestProfile, rule: ReasoningRule): RequestProfile {
  const base = profile.isDeterministic;
  return Object.freeze({
    ...profile,
    isDeterministic(request: unknown): boolean {
      const r = typeof request === 'object' && request !== null ? (request as Record<string, unknown>) : undefined;
      if (!r || !rule.isReasoning(r)) return base ? base(request) : true;
      const model = r['model'];
      if (inModelFamilies(model, rule.families)) return true;
      if (base?.(request)) return true;
      const name = typeof model === 'string' ? model : '(no model)';
      const key = `${rule.packageName}\n${name}`;
      if (!warned.has(key)) {
        warned.add(key);
        warn(
          `${rule.packageName}: reasoning requests to ${name} are not cached under the 'deterministic' policy (they cannot pin their sampling). ` +
            `Opt the model family in with withCache(client, { reasoningModels: ['${name}'] }) if a repeat may get the first answer.`,
          'STRATA_REASONING_NOT_CACHED',
        );
      }
      return false;
    },
  });
}

/** A process warning where there is a Node process (a console warning elsewhere, e.g. an edge runtime). */
function warn(message: string, code: string): void {
  const p = (globalThis as { process?: { emitWarning?: (m: string, o: { code: string }) => void } }).process;
  if (typeof p?.emitWarning === 'function') p.emitWarning(message, { code });
  else console.warn(`[${code}] ${message}`);
}
