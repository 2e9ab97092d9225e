import type { LayerCalibration, SemanticCalibrationStats } from './calibration.js';
import type { CachingEmbedder } from './caching-embedder.js';
import type { EmbeddingQueue, EmbeddingQueueStats } from './embedding-queue.js';
import type { RecordStore } from './records.js';
import type { ReplicationStats, Replicator } from './replicator.js';
import type { WritePath } from './write-path.js';

/** Counts for monitoring and tests. */
export interface SemanticLayerStats {
  entries: number;
  /** Entries whose text is in the similarity index. */
  indexed: number;
  partitions: number;
  /** Partitions searched over an HNSW graph (the rest are exact flat scans). */
  graphPartitions: number;
  /**
   * Points searched exactly while their graph insert waits for a background turn: those in a
   * graph partition's tail (at most 512 per partition), and the points of a partition whose
   * graph is being built (it crossed `flatLimit`) that are not in that graph yet.
   */
  pendingGraphInserts: number;
  /** Estimated bytes of vectors and graphs. */
  indexBytes: number;
  /** Texts in the embedding cache (vectors, or references to indexed vectors). */
  embeddingCache: number;
  /** Texts sent to the embedder. */
  embeddings: number;
  embeddingCacheHits: number;
  /** Lookups that skipped the semantic layer at once because the embedder could not answer in time. */
  skippedOverload: number;
  /** Lookups whose caller gave up (abort signal or deadline) while their text waited. */
  cancelledLookups: number;
  /**
   * Lookups and writes whose text the embedder cannot represent (`Embedder.represents` said no:
   * e.g. a script USE-lite never learned): served and stored by exact key only.
   */
  unrepresentable: number;
  /** Writes kept for exact lookups only: their embedding could not be had inside the write's budget. */
  writesNotIndexed: number;
  /** The embedding queue: waiting texts, calls in flight, admission and cancellation counts. */
  queue: EmbeddingQueueStats;
  /** Mutations applied from the replication feed, re-synchronisations, lag, and the feed offset reached. */
  replication: ReplicationStats | undefined;
  /** The calibrating mode's figures (option `calibration`); undefined when it is off. */
  calibration: SemanticCalibrationStats | undefined;
  /**
   * The answer-group rule (option `answerGroups`); undefined when it is off. `maps`: partitions
   * holding a learned map now (a partition gets one once searched, at most `answerGroups.maxMaps`);
   * `builds`: maps built so far; `evictions`: maps dropped for a more searched partition;
   * `hits`: lookups it served.
   */
  answerGroups: { maps: number; builds: number; evictions: number; hits: number } | undefined;
}

/** The layer's figures, gathered from its parts. */
export function layerStats(parts: {
  readonly store: RecordStore;
  readonly vectors: CachingEmbedder;
  readonly counters: { readonly skippedOverload: number; readonly cancelledLookups: number; readonly unrepresentable: number };
  readonly writes: WritePath;
  readonly queue: EmbeddingQueue;
  readonly replicator: Replicator | undefined;
  readonly calibration: LayerCalibration | undefined;
  readonly answerGroups: { maps: number; builds: number; evictions: number; hits: number } | undefined;
}): SemanticLayerStats {
  let indexed = 0;
  let graphs = 0;
  let bytes = 0;
  let pending = 0;
  for (const p of parts.store.partitions.values()) {
    indexed += p.size;
    pending += p.pendingGraphInserts;
    bytes += p.indexBytes + (p.answers?.bytes ?? 0);
    if (p.mode === 'hnsw') graphs++;
  }
  const v = parts.vectors.stats;
  return {
    entries: parts.store.size,
    indexed,
    partitions: parts.store.partitions.size,
    graphPartitions: graphs,
    pendingGraphInserts: pending,
    indexBytes: bytes,
    embeddingCache: v.size,
    embeddings: v.embedded,
    embeddingCacheHits: v.hits,
    ...parts.counters,
    writesNotIndexed: parts.writes.notIndexed,
    queue: parts.queue.stats(),
    replication: parts.replicator?.stats(),
    calibration: parts.calibration?.stats(),
    answerGroups: parts.answerGroups,
  };
}
