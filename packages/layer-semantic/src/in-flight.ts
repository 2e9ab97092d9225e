import type { InFlightMatch, SemanticGuard } from '@strata-cache/core';
import { type MatchCandidate, checkGuards } from './match.js';
import { innerProduct } from './scan.js';

/** One lookup that missed: what a similar lookup moments later compares itself with. */
interface Miss {
  readonly keyId: string;
  readonly scopeId: string;
  readonly text: string;
  readonly vector: Float32Array;
  readonly at: number;
}

/** Matches reported per lookup (the first one loading in core's process is waited for). */
const MAX_REPORTED = 3;
/**
 * The most recent misses of a partition a lookup compares itself with (≈ 0.12 ms for 512-d
 * vectors; all 1,000 would cost ≈ 0.5 ms of every miss in a busy partition).
 */
const MAX_SCANNED = 256;

/**
 * The lookups that missed in the last `windowMs`, per partition: their answers are likely being
 * loaded right now. A lookup that misses too is compared with the 256 most recent of its
 * partition (cosine, then the guards) and names those it would be served from once stored — the
 * paraphrase asked while the first wording's answer is on its way — so core can wait for that
 * load instead of calling upstream a second time. Bounded: at most `max` misses in all (the oldest go first); an entry written under
 * a miss's key ends it (its answer is a candidate like any other from then on).
 */
export class RecentMisses {
  /** Partition → its misses, oldest first; partitions in order of their latest miss. */
  private readonly byPartition = new Map<string, Miss[]>();
  /** Key id → its partition (one miss per key). */
  private readonly partitionOf = new Map<string, string>();
  private size = 0;

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  /** Whether `partition` holds a miss that is not too old (a lookup there must embed its text). */
  has(partition: string, now: number): boolean {
    const list = this.byPartition.get(partition);
    return list !== undefined && list.length > 0 && list[list.length - 1]!.at + this.windowMs > now;
  }

  /**
   * The misses of `partition` (and scope) this lookup would be served from: `joinable` (by
   * similarity and text), every guard passing; most similar first, at most three.
   */
  match(
    partition: string,
    query: { readonly keyId: string; readonly scopeId: string; readonly text: string; readonly vector: Float32Array },
    joinable: (similarity: number, text: string) => boolean,
    guards: readonly SemanticGuard[],
    now: number,
  ): InFlightMatch[] {
    const list = this.prune(partition, now);
    if (!list) return [];
    const found: Array<MatchCandidate & { keyId: string }> = [];
    // Newest first, and no further back than MAX_SCANNED: a load still running began moments ago.
    for (let i = list.length - 1; i >= 0 && i >= list.length - MAX_SCANNED; i--) {
      const m = list[i]!;
      if (m.scopeId !== query.scopeId || m.keyId === query.keyId) continue;
      const similarity = innerProduct(m.vector, 0, query.vector, query.vector.length);
      if (joinable(similarity, m.text)) found.push({ keyId: m.keyId, text: m.text, similarity, vector: () => m.vector });
    }
    found.sort((a, b) => b.similarity - a.similarity);
    const out: InFlightMatch[] = [];
    for (const c of found) {
      // The guards see the candidate's own similarity as the threshold it passed.
      if (checkGuards(query, c, c.similarity, guards)) continue;
      out.push({ keyId: c.keyId, similarity: c.similarity });
      if (out.length >= MAX_REPORTED) break;
    }
    return out;
  }

  /** Remembers a lookup that missed (a key already remembered keeps its first miss). */
  remember(partition: string, miss: Miss): void {
    if (this.partitionOf.has(miss.keyId)) return;
    let list = this.prune(partition, miss.at);
    if (list)
      this.byPartition.delete(partition); // re-inserted last: the most recent partition
    else list = [];
    list.push(miss);
    this.byPartition.set(partition, list);
    this.partitionOf.set(miss.keyId, partition);
    this.size++;
    while (this.size > this.max) this.dropOldest();
  }

  /** An entry was written under `keyId`: its miss is over. */
  written(keyId: string): void {
    const partition = this.partitionOf.get(keyId);
    if (partition === undefined) return;
    const list = this.byPartition.get(partition);
    const i = list ? list.findIndex((m) => m.keyId === keyId) : -1;
    if (i >= 0) this.drop(partition, list!, i);
  }

  clear(): void {
    this.byPartition.clear();
    this.partitionOf.clear();
    this.size = 0;
  }

  get count(): number {
    return this.size;
  }

  /** The partition's misses younger than the window (older ones dropped), or undefined. */
  private prune(partition: string, now: number): Miss[] | undefined {
    const list = this.byPartition.get(partition);
    if (!list) return undefined;
    while (list.length > 0 && list[0]!.at + this.windowMs <= now) this.drop(partition, list, 0);
    return this.byPartition.get(partition);
  }

  private drop(partition: string, list: Miss[], i: number): void {
    const [m] = list.splice(i, 1);
    this.partitionOf.delete(m!.keyId);
    this.size--;
    if (list.length === 0) this.byPartition.delete(partition);
  }

  /** The oldest miss of the partition that missed least recently. */
  private dropOldest(): void {
    const first = this.byPartition.entries().next().value as [string, Miss[]] | undefined;
    if (first) this.drop(first[0], first[1], 0);
  }
}
