import { join } from 'node:path';
import type { CacheEntry, CacheKey } from '@strata-cache/core';
import { Partition, type PartitionState } from './partition.js';
import type { Rec, RecordStore } from './records.js';
import { type SnapshotFile, SnapshotRejected, openSnapshot, writeSnapshot } from './snapshot.js';

type PartitionMeta = Omit<PartitionState, 'vectors'> & { vectorOffset?: number; graph?: string };

/** What a snapshot records besides the entries: the embedder and the replication feed's offset. */
export interface SnapshotIdentity {
  readonly embedderId: string;
  readonly dimensions: number;
}

/**
 * Loads the current snapshot of `dir` into `store`, verified whole first (see snapshot.ts).
 * Resolves false when there is none, the feed offset it recorded (or undefined) otherwise;
 * throws SnapshotRejected when it is torn or belongs to another embedder. The store is replaced
 * only once everything loaded.
 */
export async function loadSnapshot(
  dir: string,
  store: RecordStore,
  identity: SnapshotIdentity,
): Promise<{ feedOffset: string | undefined; extra: (name: string) => Promise<Buffer | undefined> } | false> {
  const snap = await openSnapshot(dir, identity);
  if (!snap) return false;
  const env = store.env!;
  const meta = JSON.parse((await snap.read('partitions.json')).toString('utf8')) as PartitionMeta[];
  const vbuf = await snap.read('vectors.f32');
  if (vbuf.byteLength % 4 !== 0) throw new SnapshotRejected('vectors.f32 is not a whole number of floats');
  const floats =
    vbuf.byteOffset % 4 === 0 ? new Float32Array(vbuf.buffer, vbuf.byteOffset, vbuf.byteLength / 4) : new Float32Array(Uint8Array.from(vbuf).buffer);
  const records: Rec[] = [];
  const owners = meta.map(() => new Map<number, Rec>());
  const placed: Array<{ rec: Rec; p: number; label: number }> = [];
  const seen = new Set<string>();
  const lines = (await snap.read('entries.jsonl')).toString('utf8').split('\n');
  for (const line of lines) {
    if (line === '') continue;
    const { k, e, p, l } = JSON.parse(line) as { k: CacheKey; e: CacheEntry; p?: number; l?: number };
    if (seen.has(k.id)) throw new SnapshotRejected(`entry ${k.id} appears twice`);
    seen.add(k.id);
    const rec = store.restore(k, e);
    if (p !== undefined) {
      if (!owners[p] || l === undefined) throw new SnapshotRejected(`entry ${k.id} names partition ${p}, which does not exist`);
      owners[p].set(l, rec);
      placed.push({ rec, p, label: l });
    }
    records.push(rec);
  }
  if (records.length !== snap.manifest.records) throw new SnapshotRejected(`manifest says ${snap.manifest.records} entries, found ${records.length}`);
  const byIndex: Array<Partition<Rec>> = meta.map((m, i) => {
    if (!m.key.startsWith(store.partitionPrefix)) throw new SnapshotRejected(`partition ${m.key.slice(0, 40)} belongs to another embedder`);
    const state: PartitionState = {
      ...m,
      ...(m.mode === 'flat' ? { vectors: floats.subarray(m.vectorOffset!, m.vectorOffset! + m.labels.length * env.dims) } : {}),
    };
    return Partition.restore(state, env, owners[i]!, m.graph ? snap.file(m.graph) : undefined);
  });
  for (const { rec, p, label } of placed) {
    rec.part = byIndex[p];
    rec.label = label;
  }
  store.load(records, byIndex);
  // Files other parts of the layer added (verified with the rest): absent in older snapshots.
  const extra = async (name: string) => (Object.hasOwn(snap.manifest.files ?? {}, name) ? snap.read(name) : undefined);
  return { feedOffset: snap.manifest.feedOffset, extra };
}

/**
 * Writes the store as an atomic snapshot. The capture runs synchronously (one event-loop turn),
 * so metadata, flat vectors, graphs and the feed offset all describe the same moment.
 */
export function writeStoreSnapshot(
  dir: string,
  store: RecordStore,
  identity: SnapshotIdentity,
  feedOffset: () => string | undefined,
  extra: () => ReadonlyArray<{ readonly name: string; readonly data: Buffer | string }> = () => [],
): Promise<string> {
  return writeSnapshot(dir, (tmp) => {
    const parts = [...store.partitions.values()];
    const partIndex = new Map(parts.map((p, i) => [p, i]));
    const meta: PartitionMeta[] = [];
    const flatChunks: Float32Array[] = [];
    const files: SnapshotFile[] = [];
    let offset = 0;
    parts.forEach((p, i) => {
      const { vectors, ...state } = p.exportState();
      if (state.mode === 'flat') {
        meta.push({ ...state, vectorOffset: offset });
        flatChunks.push(vectors!);
        offset += vectors!.length;
      } else {
        const name = `graph-${i}.bin`;
        p.writeGraph(join(tmp, name));
        meta.push({ ...state, graph: name });
        files.push({ name });
      }
    });
    const lines: string[] = [];
    for (const r of store.records.values()) {
      const p = r.part ? partIndex.get(r.part) : undefined;
      lines.push(JSON.stringify(p === undefined ? { k: r.key, e: r.entry } : { k: r.key, e: r.entry, p, l: r.label }));
    }
    const vecBuf = Buffer.alloc(offset * 4);
    let at = 0;
    for (const c of flatChunks) {
      Buffer.from(c.buffer, c.byteOffset, c.byteLength).copy(vecBuf, at);
      at += c.byteLength;
    }
    const fo = feedOffset();
    return {
      files: [
        { name: 'partitions.json', data: JSON.stringify(meta) },
        { name: 'entries.jsonl', data: lines.join('\n') + '\n' },
        { name: 'vectors.f32', data: vecBuf },
        ...files,
        ...extra(),
      ],
      manifest: {
        createdAt: Date.now(),
        embedderId: identity.embedderId,
        dimensions: identity.dimensions,
        records: store.records.size,
        ...(fo !== undefined ? { feedOffset: fo } : {}),
      },
    };
  });
}
