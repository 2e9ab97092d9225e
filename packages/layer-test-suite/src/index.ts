import { describe } from 'vitest';
import { contractGroup, expiryGroup, referencesGroup, scopesGroup, storageGroup, throughCoreGroup, unavailableGroup } from './groups-core.js';
import { batchGroup, clearGroup, closedGroup, scanGroup, searchGroup, tagsGroup, versionsGroup } from './groups-optional.js';
import type { LayerComplianceOptions } from './helpers.js';

export { makeEntry, trickyValue, uniqueScope } from './helpers.js';
export type { GroupContext, LayerComplianceOptions } from './helpers.js';
export {
  batchGroup,
  clearGroup,
  closedGroup,
  contractGroup,
  expiryGroup,
  referencesGroup,
  scanGroup,
  scopesGroup,
  searchGroup,
  storageGroup,
  tagsGroup,
  throughCoreGroup,
  unavailableGroup,
  versionsGroup,
};

/**
 * The groups of the suite, in the order `runLayerComplianceSuite` runs them. Each group builds
 * its own fresh layer; run a subset with `runLayerComplianceSuite(options, [storageGroup, ...])`
 * or call a group inside your own describe block.
 */
export const complianceGroups = [
  contractGroup,
  storageGroup,
  referencesGroup,
  expiryGroup,
  scopesGroup,
  throughCoreGroup,
  tagsGroup,
  versionsGroup,
  scanGroup,
  batchGroup,
  searchGroup,
  clearGroup,
  closedGroup,
  unavailableGroup,
] as const;

/**
 * The compliance suite every Strata layer runs. Call it at the top level of a vitest file:
 *
 * ```ts
 * runLayerComplianceSuite({ name: 'memory', create: () => new MemoryLayer() });
 * ```
 *
 * Checks a layer does not declare (tags, batch, semantic search, scan, versions, close) are
 * reported as skipped, not passed.
 */
export function runLayerComplianceSuite(
  options: LayerComplianceOptions,
  groups: ReadonlyArray<(options: LayerComplianceOptions) => void> = complianceGroups,
): void {
  describe(`layer compliance: ${options.name}`, () => {
    for (const g of groups) g(options);
  });
}
