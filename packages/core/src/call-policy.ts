import type { EventEmitter } from 'node:events';
import type { CacheStats } from './cache-stats.js';
import type { CallRecord } from './call.js';
import type { RequestProfile } from './profile.js';
import type { Scope } from './scope.js';
import type { CacheEvents, CachePlugin, CachePolicy, PolicyDecision, ResolvedDecision } from './types.js';

const CACHE_EVERYTHING: ResolvedDecision = Object.freeze({ read: true, write: true });
const NON_DETERMINISTIC = 'non-deterministic';
const SKIP_HINTS: Record<string, string> = {
  [NON_DETERMINISTIC]: 'chat requests are cached only with temperature 0 or a seed; set one, or use policy "always"',
};

/** Whether a call may read and write the cache: the cache policy, then each plugin's `onRequest`. */
export class CallPolicy {
  constructor(
    private readonly policy: CachePolicy,
    private readonly plugins: readonly CachePlugin[],
    private readonly counters: CacheStats,
    private readonly events: EventEmitter<CacheEvents>,
    private readonly warnOnPolicySkip: boolean,
  ) {}

  decide(request: unknown, profile: RequestProfile, scope: Scope): ResolvedDecision {
    let d: PolicyDecision;
    if (this.policy === 'always') d = CACHE_EVERYTHING;
    else if (this.policy === 'deterministic') {
      const det = profile.isDeterministic ? profile.isDeterministic(request) : true;
      d = det ? CACHE_EVERYTHING : { read: false, write: false, reason: NON_DETERMINISTIC };
    } else {
      const r = this.policy({ request, profile, scope });
      d = typeof r === 'boolean' ? { read: r, write: r } : r;
    }
    for (const p of this.plugins) {
      const pd = p.onRequest?.({ request, profile, scope });
      if (pd) d = { ...d, ...pd, tags: [...(d.tags ?? []), ...(pd.tags ?? [])] };
    }
    return d === CACHE_EVERYTHING ? CACHE_EVERYTHING : { ...d, read: d.read ?? true, write: d.write ?? true };
  }

  /** Whether the call skips the cache (option or policy); counts and reports policy skips. */
  skips(call: CallRecord): boolean {
    if (call.options.bypass) return true;
    const d = call.decision;
    if (d.read || d.write) return false;
    const reason = d.reason ?? 'policy';
    if (this.counters.recordPolicySkip(reason)) {
      this.events.emit('policySkip', { key: call.key, reason });
      if (this.warnOnPolicySkip) {
        const hint = SKIP_HINTS[reason] ?? 'the cache policy declined it';
        process.emitWarning(
          `@strata-cache/core: a request was not cached (${reason}): ${hint}. stats().policySkips counts these; this warning is shown once per reason (option warnOnPolicySkip: false turns it off).`,
          { code: 'STRATA_POLICY_SKIP' },
        );
      }
    }
    return true;
  }
}
