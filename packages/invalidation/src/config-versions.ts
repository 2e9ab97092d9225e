import { InvalidRequestError, type MultiLayerCache, type ScopeInput, canonicalize, scopeBaseId, sha256 } from '@strata-cache/core';
import { PKG, safeCanon, scopeInputOf } from './internals.js';
import type { VersionStore } from './types.js';

/**
 * Config fingerprints per tenant+namespace, behind `engine.trackConfig`: a changed
 * configuration (system prompt, model, retrieval settings) bumps the scope's version. With a
 * `VersionStore` the fingerprint and version survive restarts and are shared by processes.
 * Only fingerprints are kept (of the whole config and of each field, to name the changed
 * fields): never a config value, which may hold a credential.
 */
export class ConfigVersions {
  private readonly fingerprints = new Map<string, { fingerprint: string; fields: Record<string, string> }>();

  constructor(
    private readonly cache: MultiLayerCache,
    private readonly store: VersionStore | undefined,
    private readonly prefix: string,
    private readonly bump: (scope: ScopeInput, reason: string) => Promise<{ version: number }>,
  ) {}

  async track(scope: ScopeInput | undefined, config: Record<string, unknown>): Promise<{ changed: boolean; version: number; changedFields: string[] }> {
    if (typeof config !== 'object' || config === null) throw new InvalidRequestError(`${PKG}: trackConfig() needs a config object`, { field: 'config' });
    const resolved = this.cache.resolveScope(scope);
    const base = scopeBaseId(resolved);
    const fingerprint = sha256(canonicalize(config));
    const fields = fieldFingerprints(config);
    let previous = this.fingerprints.get(base);
    let version = resolved.version;
    let withValues = false;
    if (this.store) {
      const raw = await this.store.get(this.prefix + base);
      if (raw) {
        try {
          const rec = JSON.parse(raw) as { fingerprint: string; version: number; fields?: Record<string, string>; config?: Record<string, unknown> };
          if (Number.isSafeInteger(rec.version) && rec.version >= 0) {
            this.cache.setScopeVersion(scopeInputOf(resolved), rec.version);
            version = Math.max(version, rec.version);
          }
          // `config` (values) was written by earlier versions: compared by its fingerprints, and rewritten without them below.
          previous = { fingerprint: rec.fingerprint, fields: rec.fields ?? fieldFingerprints(rec.config ?? {}) };
          withValues = rec.config !== undefined;
        } catch {
          // unreadable record: treat as unknown and overwrite below
        }
      }
    }
    const save = async (v: number) => {
      this.fingerprints.set(base, { fingerprint, fields });
      if (this.store) await this.store.set(this.prefix + base, JSON.stringify({ fingerprint, version: v, fields }));
    };
    if (!previous) {
      await save(version);
      return { changed: false, version, changedFields: [] };
    }
    if (previous.fingerprint === fingerprint) {
      if (withValues) await save(version);
      else this.fingerprints.set(base, { fingerprint, fields });
      return { changed: false, version, changedFields: [] };
    }
    const before = previous.fields;
    const changedFields = [...new Set([...Object.keys(before), ...Object.keys(fields)])].filter((k) => before[k] !== fields[k]).sort();
    const bumped = await this.bump(scopeInputOf(resolved), `config changed: ${changedFields.join(', ') || 'fingerprint'}`);
    await save(bumped.version);
    return { changed: true, version: bumped.version, changedFields };
  }
}

/** One fingerprint per field of a config (a field left out has none). */
function fieldFingerprints(config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(config)) if (config[k] !== undefined) out[k] = sha256(safeCanon(config[k]));
  return out;
}
