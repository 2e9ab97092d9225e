import type { CacheKey, SemanticDescriptor } from './fingerprint.js';
import { computeSemantic } from './fingerprint.js';
import type { InFlightMatch, RejectedCandidate } from './layer.js';
import type { RequestProfile } from './profile.js';
import type { Scope } from './scope.js';
import type { Call, CallOptions, CalibrationInfo, ResolvedDecision } from './types.js';

const NOT_YET = Symbol('not yet');

/**
 * One call's record, built once by `MultiLayerCache` and handed to every step (read, load,
 * write, events), so each step reads what it needs instead of taking ten parameters, and
 * nothing is fingerprinted twice: the key is computed once, the semantic descriptor on first use.
 */
export class CallRecord implements Call {
  rejected: RejectedCandidate[] | undefined = undefined;
  calibrations: CalibrationInfo[] | undefined = undefined;
  /** Similar misses still loading that a semantic layer named on this call's search (`joinSimilar`). */
  inFlight: readonly InFlightMatch[] | undefined = undefined;
  private descriptor: SemanticDescriptor | undefined | typeof NOT_YET = NOT_YET;

  constructor(
    readonly request: unknown,
    readonly profile: RequestProfile,
    readonly scope: Scope,
    readonly key: CacheKey,
    readonly decision: ResolvedDecision,
    readonly options: CallOptions,
    readonly started: number,
    readonly write: boolean,
  ) {}

  get semantic(): SemanticDescriptor | undefined {
    if (this.descriptor === NOT_YET) this.descriptor = computeSemantic(this.request, this.scope, this.profile);
    return this.descriptor;
  }

  addRejected(candidates: readonly RejectedCandidate[]): void {
    (this.rejected ??= []).push(...candidates);
  }

  addCalibration(info: CalibrationInfo): void {
    (this.calibrations ??= []).push(info);
  }

  /** Forgets what the semantic search found (before the same call searches again). */
  resetSemantic(): void {
    this.rejected = undefined;
    this.calibrations = undefined;
    this.inFlight = undefined;
  }
}
