import { InvalidOptionError, type GuardInput, type SemanticGuard } from '@strata-cache/core';
import {
  argumentOrderGuard,
  contentOverlapGuard,
  directionGuard,
  entitiesGuard,
  negationGuard,
  numbersGuard,
  oppositesGuard,
  symbolsGuard,
  type ContentOverlapOptions,
  type EntitiesGuardOptions,
  type LexiconGuardOptions,
  type NumbersGuardOptions,
  type OppositesGuardOptions,
} from './guards.js';

/**
 * Which guards `defaultGuards()` builds. Each is `true` (on, defaults), `false` (off) or its own options (on).
 */
export interface SemanticGuardsOptions {
  /**
   * Emoji, pictographs and operators must be the same ("What does 🙃 mean?" vs "What does 🫠 mean?",
   * "Is x > 5?" vs "Is x < 5?", "a += b" vs "a -= b"): encoders barely see them.
   * @default true
   */
  symbols?: boolean | undefined;
  /**
   * Numbers, amounts, ordinals, units and dates must agree ("3 seats" vs "30 seats", "km" vs "miles").
   * @default true
   */
  numbers?: boolean | NumbersGuardOptions | undefined;
  /**
   * Negation polarity must agree ("does it" vs "doesn't it", "with" vs "without").
   * @default true
   */
  negation?: boolean | undefined;
  /**
   * No opposite direction or relation words ("import" vs "export", "more than" vs "less than", "since" vs "until").
   * @default true
   */
  direction?: boolean | LexiconGuardOptions | undefined;
  /**
   * No opposite actions or states ("lock" vs "unlock", "start" vs "stop", "accept" vs "decline"), including reversing prefixes.
   * @default true
   */
  opposites?: boolean | OppositesGuardOptions | undefined;
  /**
   * No swapped arguments around the same relation ("Does A beat B?" vs "Does B beat A?").
   * @default true
   */
  argumentOrder?: boolean | undefined;
  /**
   * No swapped names or entities ("Springfield, Illinois" vs "Springfield, Missouri", "Rust" vs "Go").
   * @default true
   */
  entities?: boolean | EntitiesGuardOptions | undefined;
  /**
   * Second opinion from content-word overlap: rejects pairs that share the frame but not the topic.
   * Costs some true paraphrases; see the package README for measured figures.
   * @default false
   */
  contentOverlap?: boolean | ContentOverlapOptions | undefined;
}

const GUARD_OPTIONS: Record<keyof SemanticGuardsOptions, readonly string[] | null> = {
  symbols: null,
  numbers: ['rejectOneSided'],
  negation: null,
  direction: ['extraGroups'],
  opposites: ['extraGroups', 'prefixes'],
  argumentOrder: null,
  entities: ['rejectAdded', 'maxSwapped'],
  contentOverlap: ['maxSubstitutions', 'minJaccard', 'trustAbove'],
};

const DEFAULT_ON: Record<keyof SemanticGuardsOptions, boolean> = {
  symbols: true,
  numbers: true,
  negation: true,
  direction: true,
  opposites: true,
  argumentOrder: true,
  entities: true,
  contentOverlap: false,
};

function validate(options: SemanticGuardsOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('@strata-cache/semantic-guards: defaultGuards(options) expects an object');
  }
  for (const [key, value] of Object.entries(options)) {
    if (!(key in GUARD_OPTIONS)) {
      throw new InvalidOptionError(`@strata-cache/semantic-guards: unknown option "${key}" (known: ${Object.keys(GUARD_OPTIONS).join(', ')})`, { field: key });
    }
    if (value === undefined || typeof value === 'boolean') continue;
    const allowed = GUARD_OPTIONS[key as keyof SemanticGuardsOptions];
    if (allowed === null || typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new InvalidOptionError(
        `@strata-cache/semantic-guards: option "${key}" must be ${allowed === null ? 'a boolean' : 'a boolean or an options object'}`,
        { field: key },
      );
    }
    for (const [sub, v] of Object.entries(value as Record<string, unknown>)) {
      if (!allowed.includes(sub)) {
        throw new InvalidOptionError(`@strata-cache/semantic-guards: unknown option "${key}.${sub}" (known: ${allowed.join(', ')})`, {
          field: `${key}.${sub}`,
        });
      }
      const isBool = sub === 'rejectOneSided' || sub === 'rejectAdded' || sub === 'prefixes';
      const isNum = sub === 'maxSwapped' || sub === 'maxSubstitutions' || sub === 'minJaccard' || sub === 'trustAbove';
      if ((isBool && v !== undefined && typeof v !== 'boolean') || (isNum && v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0))) {
        throw new InvalidOptionError(`@strata-cache/semantic-guards: option "${key}.${sub}" must be ${isBool ? 'a boolean' : 'a non-negative number'}`, {
          field: `${key}.${sub}`,
        });
      }
    }
  }
}

const sub = <T extends object>(v: boolean | T | undefined): T => (typeof v === 'object' && v !== null ? v : ({} as T));

/**
 * The recommended guard set, cheapest first. Every guard is on by default except the
 * content-overlap second opinion; pass `false` to switch one off or an options object to tune it.
 */
export function defaultGuards(options: SemanticGuardsOptions = {}): SemanticGuard[] {
  validate(options);
  const on = (k: keyof SemanticGuardsOptions) => (options[k] === undefined ? DEFAULT_ON[k] : options[k] !== false);
  const guards: SemanticGuard[] = [];
  if (on('symbols')) guards.push(symbolsGuard());
  if (on('numbers')) guards.push(numbersGuard(sub(options.numbers)));
  if (on('negation')) guards.push(negationGuard());
  if (on('direction')) guards.push(directionGuard(sub(options.direction)));
  if (on('opposites')) guards.push(oppositesGuard(sub(options.opposites)));
  if (on('argumentOrder')) guards.push(argumentOrderGuard());
  if (on('entities')) guards.push(entitiesGuard(sub(options.entities)));
  if (on('contentOverlap')) guards.push(contentOverlapGuard(sub(options.contentOverlap)));
  return guards;
}

/** Outcome of running a guard list on one candidate. */
export type GuardOutcome = { readonly accept: true } | { readonly accept: false; readonly guard: string; readonly reason: string };

/**
 * Runs guards in order and stops at the first rejection, reporting which guard turned the candidate
 * down — the shape a semantic layer records in `RejectedCandidate` (`guard` + `reason`).
 */
export function runGuards(guards: readonly SemanticGuard[], input: GuardInput): GuardOutcome {
  for (const g of guards) {
    const v = g.check(input);
    if (!v.accept) return { accept: false, guard: g.name, reason: v.reason };
  }
  return { accept: true };
}

/** Every guard's verdict (for explaining a decision or measuring guards one by one). */
export function explainGuards(guards: readonly SemanticGuard[], input: GuardInput): Array<{ guard: string; accept: boolean; reason?: string }> {
  return guards.map((g) => {
    const v = g.check(input);
    return v.accept ? { guard: g.name, accept: true } : { guard: g.name, accept: false, reason: v.reason };
  });
}
