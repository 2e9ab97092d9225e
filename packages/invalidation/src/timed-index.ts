/**
 * Id → value with a time, pruned oldest-first. A Map alone would do, but iterating a Map from
 * its start after many deletions walks over the deleted slots (V8 keeps them until it rehashes),
 * which made every prune O(deleted). A queue with a head index keeps pruning O(1) amortised.
 */
export class TimedIndex<V extends { readonly at: number }> {
  private readonly byId = new Map<string, V>();
  private queue: Array<{ id: string; value: V }> = [];
  private head = 0;

  get size(): number {
    return this.byId.size;
  }

  get(id: string): V | undefined {
    return this.byId.get(id);
  }

  /** Values must be set in non-decreasing `at` order (they are: the clock only moves forward). */
  set(id: string, value: V): void {
    this.byId.set(id, value);
    this.queue.push({ id, value });
  }

  delete(id: string): boolean {
    return this.byId.delete(id);
  }

  values(): IterableIterator<V> {
    return this.byId.values();
  }

  entries(): IterableIterator<[string, V]> {
    return this.byId.entries();
  }

  /** Drops values older than `oldest`, and the oldest ones beyond `max`. */
  prune(oldest: number, max: number): void {
    while (this.head < this.queue.length) {
      const { id, value } = this.queue[this.head]!;
      const live = this.byId.get(id) === value;
      if (live && value.at >= oldest && this.byId.size <= max) break;
      if (live) this.byId.delete(id);
      this.head++;
    }
    if (this.head > 1_024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.byId.clear();
    this.queue = [];
    this.head = 0;
  }
}
