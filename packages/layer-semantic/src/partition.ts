import type { HierarchicalNSW } from 'hnswlib-node';
import type { AnswerGroupModel } from './answer-groups.js';
import { GraphTail } from './graph-tail.js';
import type { HnswModule } from './hnsw.js';
import { scanRows } from './scan.js';

export interface HnswParams {
  readonly m: number;
  readonly efConstruction: number;
  readonly ef: number;
  readonly randomSeed: number;
}

export interface IndexEnv {
  readonly hnsw: HnswModule;
  readonly params: HnswParams;
  readonly dims: number;
  /** Partitions up to this size are searched exactly (flat); larger ones get an HNSW graph. */
  readonly flatLimit: number;
}

export interface Candidate {
  readonly label: number;
  /** Cosine similarity (vectors are unit length, so the dot product). */
  readonly similarity: number;
}

/** hnswlib allocates 65,536 label-operation mutexes (40 B each) per graph, whatever its size. */
const HNSW_FIXED_BYTES = 65_536 * 40;
/** Vectors per flat-storage chunk (32 KB at 512-d). */
const CHUNK = 16;
/** A flat chunk grows this many rows at a time, so a partition carries at most this much slack. */
const CHUNK_STEP = 2;
/** Points copied per event-loop turn while compacting. */
const COMPACT_CHUNK = 64;
/**
 * Points added to a graph partition wait in a tail (searched exactly beside the graph) and are
 * inserted into the graph in the background; at most this many wait — beyond, an add inserts at
 * once. Scanning a full tail costs about what one graph insert does.
 */
const TAIL_MAX = 512;
/** How long one background turn may insert tail points into the graph. */
const DRAIN_SLICE_MS = 2;

/**
 * The vectors of one exact partition. Small partitions are a packed Float32Array searched
 * exactly (a 1,000 × 512 scan is a fraction of a millisecond, with no per-partition graph
 * overhead, which is what keeps 1,000 partitions cheap); a partition that outgrows
 * `flatLimit` moves into its own HNSW graph (hnswlib-node, inner-product space), and moves
 * back when it shrinks. A point added to a graph partition is searchable at once from a small
 * tail (scanned exactly beside the graph) and inserted into the graph in a background turn, so an
 * add — a local write or a replicated one — does not wait for a graph insert unless the tail is
 * full. Labels are partition-local and never reused. `O` is what a label
 * belongs to (the layer's record).
 */
export class Partition<O = string> {
  readonly key: string;
  private readonly env: IndexEnv;
  private nextLabel = 0;
  /** Live points. */
  size = 0;

  // flat mode: vectors in fixed chunks of CHUNK, so growing never copies or churns memory
  private chunks: Float32Array[] = [];
  private flatLabels: number[] = [];
  private flatPos = new Map<number, number>();

  // hnsw mode
  private index: HierarchicalNSW | undefined;
  /** Points of the graph partition that wait for their graph insert. */
  private readonly tail: GraphTail;
  /** The next background turn that moves tail points into the graph. */
  private draining: NodeJS.Immediate | undefined;
  private capacity = 0;
  /** Marked-deleted slots in the graph; reused by the next inserts (allowReplaceDeleted). */
  private deleted = 0;
  /** Live labels (both modes) → the record they belong to. */
  private readonly owners = new Map<number, O>();
  private compacting: { log: Array<{ add: boolean; label: number; vec?: number[] }>; done: Promise<void> } | undefined;
  /** A graph being built from the flat vectors in slices (the partition stays flat meanwhile). */
  private promoting: Promise<void> | undefined;
  /** That graph and the labels already in it. */
  private build: GraphBuild | undefined;
  private dropped = false;
  /** The answer groups of its points and the map learned from them (the layer's answer-group rule). */
  answers: AnswerGroupModel | undefined;

  constructor(key: string, env: IndexEnv) {
    this.key = key;
    this.env = env;
    this.tail = new GraphTail(env.dims);
  }

  get mode(): 'flat' | 'hnsw' {
    return this.index ? 'hnsw' : 'flat';
  }

  /**
   * Resident bytes of vectors and graph (hnswlib's own layout, estimated from its parameters):
   * per used slot (live or deleted) the vector, level-0 links (2M ids + count), label and upper
   * levels (~1/M of the nodes, M+1 ids each) and its label-map node; per slot of capacity a mutex
   * and level (44 B — the rest of an unused slot is never touched, so never resident); per graph
   * 65,536 label-operation mutexes (2.6 MB, a constant of hnswlib).
   */
  get indexBytes(): number {
    const d = this.env.dims;
    if (!this.index) return this.chunks.reduce((n, c) => n + c.byteLength, 0) + this.flatLabels.length * 24;
    const m = this.env.params.m;
    const used = this.size - this.tail.size + this.deleted;
    const perUsed = d * 4 + (2 * m + 1) * 4 + 8 + 8 + Math.ceil(((m + 1) * 4) / m) + 48;
    return used * perUsed + this.capacity * 44 + HNSW_FIXED_BYTES + this.tail.bytes;
  }

  /**
   * Points searched exactly while their graph insert waits: a graph partition's tail, or every
   * point of a partition whose graph is being built.
   */
  get pendingGraphInserts(): number {
    return this.build ? this.flatLabels.length - this.build.live : this.tail.size;
  }

  /** The record a live label belongs to. */
  owner(label: number): O | undefined {
    return this.owners.get(label);
  }

  add(vec: Float32Array, owner: O): number {
    const label = this.nextLabel++;
    this.owners.set(label, owner);
    if (!this.index && !this.promoting && this.size + 1 > this.env.flatLimit) this.promote();
    if (!this.index) {
      this.flatAdd(vec, label);
      // Adds outpacing the build (a loop that never yields to the event loop, where its slices
      // run): from then on each add moves two waiting points into the graph, so the build ends
      // and exact scans stay bounded.
      const b = this.build;
      if (b && (b.catchingUp ||= this.flatLabels.length - b.live > this.env.flatLimit + TAIL_MAX)) this.advanceBuild(b, 2);
    } else if (this.compacting || this.tail.size >= TAIL_MAX) this.graphAdd(vec, label);
    else {
      this.tail.add(vec, label);
      this.scheduleDrain();
    }
    this.size++;
    return label;
  }

  remove(label: number): boolean {
    if (this.index) {
      if (!this.owners.delete(label)) return false;
      if (!this.tail.remove(label)) {
        this.index.markDelete(label);
        this.deleted++;
        this.compacting?.log.push({ add: false, label });
      }
      this.size--;
      if (!this.compacting && this.size <= this.env.flatLimit / 4) this.demote();
      // Heavy deletion: more deleted slots than live points (and at least flatLimit) → rebuild.
      else if (this.deleted > this.size && this.deleted >= this.env.flatLimit) void this.compact();
      return true;
    }
    const pos = this.flatPos.get(label);
    if (pos === undefined) return false;
    this.owners.delete(label);
    if (this.build?.inserted.has(label)) this.build.live--;
    const d = this.env.dims;
    const last = this.flatLabels.length - 1;
    if (pos !== last) {
      const from = (last % CHUNK) * d;
      this.chunks[Math.floor(pos / CHUNK)]!.set(this.chunks[Math.floor(last / CHUNK)]!.subarray(from, from + d), (pos % CHUNK) * d);
      const moved = this.flatLabels[last]!;
      this.flatLabels[pos] = moved;
      this.flatPos.set(moved, pos);
    }
    this.flatLabels.pop();
    this.flatPos.delete(label);
    this.size--;
    // An emptied last chunk goes back at once; a half-empty one is trimmed.
    const lastChunk = this.chunks.length - 1;
    const rowsInLast = this.flatLabels.length - lastChunk * CHUNK;
    if (rowsInLast <= 0) this.chunks.pop();
    else if (this.chunks[lastChunk]!.length / d - rowsInLast >= 2 * CHUNK_STEP) {
      this.chunks[lastChunk] = this.chunks[lastChunk]!.slice(0, (rowsInLast + CHUNK_STEP) * d);
    }
    return true;
  }

  /** Best `k` candidates, most similar first. */
  search(q: Float32Array, k: number): Candidate[] {
    if (this.size === 0 || k <= 0) return [];
    if (!this.index) return this.flatSearch(q, k);
    // Points waiting in the tail, exactly; then the graph's, merged in.
    const out = this.tail.search(q, k);
    const n = Math.min(k, this.size - this.tail.size);
    if (n <= 0) return out;
    if (this.env.params.ef < n) this.index.setEf(n);
    const r = this.index.searchKnn(toArray(q), n);
    const fromTail = out.length;
    for (let i = 0; i < r.neighbors.length; i++) out.push({ label: r.neighbors[i]!, similarity: 1 - r.distances[i]! });
    if (fromTail === 0) return out;
    out.sort((a, b) => b.similarity - a.similarity);
    if (out.length > k) out.length = k;
    return out;
  }

  /** Inserts every waiting point into the graph now (before the graph is written, copied or rebuilt). */
  settle(): void {
    this.stopDrain();
    while (this.tail.size > 0) this.drainOne();
  }

  /** Rebuilds a graph that has more deleted slots than live points (runs in slices; searches go on). */
  compact(): Promise<void> {
    if (!this.index) return this.promoting ?? Promise.resolve();
    if (this.compacting) return this.compacting.done;
    const log: Array<{ add: boolean; label: number; vec?: number[] }> = [];
    const done = this.rebuildGraph(log).finally(() => {
      this.compacting = undefined;
      // Tail points wait during a rebuild (they are not in the old graph); now they move on.
      if (this.index && this.tail.size > 0) this.scheduleDrain();
    });
    this.compacting = { log, done };
    return done;
  }

  /** Pending compaction, if any. */
  idle(): Promise<void> {
    return this.compacting?.done ?? this.promoting ?? Promise.resolve();
  }

  drop(): void {
    this.dropped = true;
    this.stopDrain();
    this.tail.clear();
    this.index = undefined;
    this.chunks = [];
    this.owners.clear();
    this.flatLabels = [];
    this.flatPos.clear();
    this.size = 0;
  }

  /** Vector of a live point (copied out of the graph for hnsw partitions). */
  vector(label: number): Float32Array | undefined {
    if (this.index) {
      if (this.tail.has(label)) return this.tail.vector(label);
      return this.owners.has(label) ? Float32Array.from(this.index.getPoint(label)) : undefined;
    }
    const pos = this.flatPos.get(label);
    if (pos === undefined) return undefined;
    const d = this.env.dims;
    const off = (pos % CHUNK) * d;
    return this.chunks[Math.floor(pos / CHUNK)]!.slice(off, off + d);
  }

  // ---- persistence ------------------------------------------------------------------

  exportState(): PartitionState {
    this.settle();
    if (this.index) {
      return { key: this.key, mode: 'hnsw', nextLabel: this.nextLabel, capacity: this.capacity, labels: [...this.owners.keys()] };
    }
    return {
      key: this.key,
      mode: 'flat',
      nextLabel: this.nextLabel,
      labels: [...this.flatLabels],
      vectors: this.packedVectors(),
    };
  }

  writeGraph(path: string): void {
    this.settle();
    this.index!.writeIndexSync(path);
  }

  static restore<O>(state: PartitionState, env: IndexEnv, owners: ReadonlyMap<number, O>, graphPath?: string): Partition<O> {
    const p = new Partition<O>(state.key, env);
    p.nextLabel = state.nextLabel;
    if (owners.size !== state.labels.length || state.labels.some((l) => !owners.has(l))) {
      throw new Error(`partition ${state.key}: ${state.labels.length} vectors but ${owners.size} entries point at it`);
    }
    for (const [l, o] of owners) p.owners.set(l, o);
    if (state.mode === 'flat') {
      const d = env.dims;
      const n = state.labels.length;
      if (!state.vectors || state.vectors.length !== n * d) throw new Error(`partition ${state.key}: vector count mismatch`);
      state.labels.forEach((l, i) => p.flatAdd(state.vectors!.subarray(i * d, i * d + d), l));
      p.size = n;
      return p;
    }
    const index = new env.hnsw.HierarchicalNSW('ip', env.dims);
    index.readIndexSync(graphPath!, true);
    index.setEf(env.params.ef);
    // The graph lists live and marked-deleted labels; every live label must be among them.
    const ids = new Set(index.getIdsList());
    if (state.labels.some((l) => !ids.has(l))) throw new Error(`partition ${state.key}: graph labels do not match the metadata`);
    p.index = index;
    p.capacity = index.getMaxElements();
    p.deleted = index.getCurrentCount() - state.labels.length;
    p.size = state.labels.length;
    return p;
  }

  // ---- internals --------------------------------------------------------------------

  private flatAdd(vec: Float32Array, label: number): void {
    const d = this.env.dims;
    const pos = this.flatLabels.length;
    const c = Math.floor(pos / CHUNK);
    const row = pos % CHUNK;
    if (c === this.chunks.length) {
      this.chunks.push(new Float32Array(CHUNK_STEP * d));
    } else if ((row + 1) * d > this.chunks[c]!.length) {
      // The last chunk grows a few rows at a time (copying at most one chunk), so a partition
      // carries almost no empty rows.
      const grown = new Float32Array(Math.min(CHUNK, row + CHUNK_STEP) * d);
      grown.set(this.chunks[c]!);
      this.chunks[c] = grown;
    }
    this.chunks[c]!.set(vec, (pos % CHUNK) * d);
    this.flatLabels.push(label);
    this.flatPos.set(label, pos);
  }

  private packedVectors(): Float32Array {
    const d = this.env.dims;
    const n = this.flatLabels.length;
    const out = new Float32Array(n * d);
    for (let c = 0; c < this.chunks.length; c++) {
      const rows = Math.min(CHUNK, n - c * CHUNK);
      if (rows > 0) out.set(this.chunks[c]!.subarray(0, rows * d), c * CHUNK * d);
    }
    return out;
  }

  private flatSearch(q: Float32Array, k: number): Candidate[] {
    const d = this.env.dims;
    const n = this.flatLabels.length;
    const top: Candidate[] = [];
    for (let c = 0; c * CHUNK < n; c++) scanRows(this.chunks[c]!, Math.min(CHUNK, n - c * CHUNK), d, q, this.flatLabels, c * CHUNK, top, k);
    return top;
  }

  private newGraph(capacity: number): HierarchicalNSW {
    const { m, efConstruction, ef, randomSeed } = this.env.params;
    const index = new this.env.hnsw.HierarchicalNSW('ip', this.env.dims);
    index.initIndex({ maxElements: capacity, m, efConstruction, randomSeed, allowReplaceDeleted: true });
    index.setEf(ef);
    return index;
  }

  private graphAdd(vec: Float32Array, label: number, index = this.index!): void {
    const arr = toArray(vec);
    if (index === this.index && this.compacting) this.compacting.log.push({ add: true, label, vec: arr.slice() });
    if (index === this.index && this.deleted > 0) {
      index.addPoint(arr, label, true);
      this.deleted--;
    } else {
      // Grow by an eighth (at least 256 slots): every empty slot costs a whole vector and its
      // links, so slack is memory; hnswlib reallocates in place, so growing often is cheap.
      const cap = index.getMaxElements();
      if (index.getCurrentCount() >= cap) index.resizeIndex(growCapacity(cap));
      index.addPoint(arr, label, false);
    }
    if (index === this.index) this.capacity = index.getMaxElements();
  }

  /**
   * Moves the flat vectors into a graph. A small partition (one slice) moves at once; a larger
   * one is built in slices of COMPACT_CHUNK points, one per event-loop turn, while the partition
   * stays flat (searched exactly, adds and removes applied to the flat vectors): inserting
   * `flatLimit` points into a graph takes a few hundred ms, which in one piece would hold up every
   * lookup — and, with replication, happen in every process at once. Points added meanwhile are
   * inserted, points removed meanwhile marked deleted, and the graph takes over in one step.
   */
  private promote(): void {
    const index = this.newGraph(growCapacity(this.flatLabels.length));
    if (this.flatLabels.length <= COMPACT_CHUNK) {
      for (const label of this.flatLabels) this.graphAdd(this.flatVector(label)!, label, index);
      this.takeGraph(index, 0);
      return;
    }
    const build: GraphBuild = { index, inserted: new Set(), live: 0, cursor: 0, catchingUp: false };
    this.build = build;
    this.promoting = this.buildGraph(build).finally(() => {
      this.promoting = undefined;
      if (this.build === build) this.build = undefined;
    });
  }

  /** The build's slices: `COMPACT_CHUNK` points per event-loop turn until it ends (adds may move it on too). */
  private async buildGraph(build: GraphBuild): Promise<void> {
    while (this.build === build && !this.dropped) {
      this.advanceBuild(build, COMPACT_CHUNK);
      if (this.build !== build) return;
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Moves up to `n` flat points that are not in the graph being built into it; ends the build when none is left. */
  private advanceBuild(build: GraphBuild, n: number): void {
    const { index, inserted } = build;
    // Flat order is insertion order except for swaps on removal: a pass that reaches the end
    // starts over, and the build ends after a whole pass finds nothing left.
    let start = build.cursor;
    for (;;) {
      while (n > 0 && build.cursor < this.flatLabels.length) {
        const label = this.flatLabels[build.cursor++]!;
        if (inserted.has(label)) continue;
        this.graphAdd(this.flatVector(label)!, label, index);
        inserted.add(label);
        build.live++;
        n--;
      }
      if (n === 0) return;
      if (start === 0) break;
      build.cursor = start = 0;
    }
    this.finishBuild(build);
  }

  /** The graph takes over (points removed while it was built marked deleted), unless the partition shrank back meanwhile. */
  private finishBuild(build: GraphBuild): void {
    if (this.build !== build || this.dropped || this.index) return;
    this.build = undefined;
    // Removed while building: marked deleted (their slots are reused by the next inserts).
    let deleted = 0;
    for (const label of build.inserted) {
      if (!this.flatPos.has(label)) {
        build.index.markDelete(label);
        deleted++;
      }
    }
    // Shrunk back meanwhile: stay flat.
    if (this.size <= this.env.flatLimit / 4) return;
    this.takeGraph(build.index, deleted);
  }

  private takeGraph(index: HierarchicalNSW, deleted: number): void {
    this.index = index;
    this.capacity = index.getMaxElements();
    this.deleted = deleted;
    this.chunks = [];
    this.flatLabels = [];
    this.flatPos.clear();
  }

  private scheduleDrain(): void {
    if (this.draining) return;
    this.draining = setImmediate(() => {
      this.draining = undefined;
      if (this.dropped || !this.index || this.compacting) return;
      const t0 = performance.now();
      while (this.tail.size > 0) {
        this.drainOne();
        if (performance.now() - t0 >= DRAIN_SLICE_MS) break;
      }
      if (this.tail.size > 0) this.scheduleDrain();
    });
    // Waiting inserts never keep a process alive: the tail is searchable as it is.
    this.draining.unref();
  }

  private stopDrain(): void {
    if (this.draining) clearImmediate(this.draining);
    this.draining = undefined;
  }

  /** Moves the newest waiting point into the graph. */
  private drainOne(): void {
    const { label, vector } = this.tail.newest()!;
    this.graphAdd(vector, label);
    this.tail.remove(label);
  }

  /** A live flat point's vector, as a view into its chunk. */
  private flatVector(label: number): Float32Array | undefined {
    const pos = this.flatPos.get(label);
    if (pos === undefined) return undefined;
    const d = this.env.dims;
    const off = (pos % CHUNK) * d;
    return this.chunks[Math.floor(pos / CHUNK)]!.subarray(off, off + d);
  }

  private demote(): void {
    const labels = [...this.owners.keys()];
    const vectors = labels.map((label) => this.vector(label)!);
    this.stopDrain();
    this.tail.clear();
    this.chunks = [];
    this.flatLabels = [];
    this.flatPos.clear();
    for (let i = 0; i < labels.length; i++) this.flatAdd(vectors[i]!, labels[i]!);
    this.index = undefined;
    this.capacity = 0;
    this.deleted = 0;
  }

  private async rebuildGraph(log: Array<{ add: boolean; label: number; vec?: number[] }>): Promise<void> {
    const old = this.index!;
    const live = [...this.owners.keys()];
    const next = this.newGraph(growCapacity(live.length));
    const copied = new Set<number>();
    for (let i = 0; i < live.length; i++) {
      const label = live[i]!;
      // (Tail points are not in the old graph; they move into the new one afterwards.)
      if (this.owners.has(label) && !this.tail.has(label)) {
        this.graphAdd(Float32Array.from(old.getPoint(label)), label, next);
        copied.add(label);
      }
      if (i % COMPACT_CHUNK === COMPACT_CHUNK - 1) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.dropped || this.index !== old) return;
      }
    }
    let deleted = 0;
    for (const op of log) {
      if (op.add && this.owners.has(op.label) && !copied.has(op.label)) {
        this.graphAdd(Float32Array.from(op.vec!), op.label, next);
        copied.add(op.label);
      } else if (!op.add && copied.delete(op.label)) {
        next.markDelete(op.label);
        deleted++;
      }
    }
    if (this.dropped || this.index !== old) return;
    this.index = next;
    this.capacity = next.getMaxElements();
    this.deleted = deleted;
    if (this.size <= this.env.flatLimit / 4) this.demote();
  }
}

/** A graph being built from a flat partition's vectors. */
interface GraphBuild {
  readonly index: HierarchicalNSW;
  /** Labels inserted so far. */
  readonly inserted: Set<number>;
  /** Of those, the ones still in the partition. */
  live: number;
  /** Where `advanceBuild` goes on in the flat labels. */
  cursor: number;
  /** Adds outpaced the build: each add moves it on until it ends. */
  catchingUp: boolean;
}

export interface PartitionState {
  key: string;
  mode: 'flat' | 'hnsw';
  nextLabel: number;
  labels: number[];
  capacity?: number;
  vectors?: Float32Array;
}

/** The next graph capacity after `n` slots are full. */
function growCapacity(n: number): number {
  return n + Math.max(256, Math.ceil(n / 8));
}

/** One reusable array per dimension: hnswlib-node takes number[] and copies it at once. */
const scratch = new Map<number, number[]>();

/**
 * The vector as the number[] hnswlib-node wants, in a reused array (a fresh one per insert or
 * search would be 4 KB of garbage each at 512-d). Valid until the next call.
 */
function toArray(v: Float32Array): number[] {
  let a = scratch.get(v.length);
  if (!a) scratch.set(v.length, (a = new Array<number>(v.length).fill(0)));
  for (let i = 0; i < v.length; i++) a[i] = v[i]!;
  return a;
}
