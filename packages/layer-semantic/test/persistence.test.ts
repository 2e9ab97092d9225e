import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { SemanticLayer } from '../src/index.js';
import { HashEmbedder, TableEmbedder, chatItem, randomUnit } from './helpers.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'strata-semantic-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** 40 entries in a graph partition (flatLimit 8) + 12 small flat partitions + one exact-only entry. */
async function populate(layer: SemanticLayer, emb: TableEmbedder) {
  const items = [];
  for (let i = 0; i < 40; i++) {
    emb.table.set(`big ${i}`, randomUnit(emb.dimensions));
    items.push(chatItem(`big ${i}`, { tags: i % 2 ? ['odd'] : [] }));
  }
  for (let p = 0; p < 12; p++) {
    emb.table.set(`small ${p}`, randomUnit(emb.dimensions));
    items.push(chatItem(`small ${p}`, { system: `prompt ${p}` }));
  }
  await layer.setMany(items.map((x) => ({ key: x.key, entry: x.entry })));
  for (let i = 0; i < 5; i++) await layer.delete(items[i]!.key); // deleted slots in the graph
  return items;
}

describe('SemanticLayer persistence: what a restart would not match leaves the index', () => {
  it('a snapshot taken before represents() or with a larger maxTextLength: those vectors are dropped on load, the entries stay', async () => {
    const dir = await tempDir();
    class LatinOnly extends HashEmbedder {
      represents(text: string): boolean {
        return !/[^ -~]/.test(text);
      }
    }
    const open = { guards: [], selector: false as const, threshold: 0.9 };
    const a = new SemanticLayer({ embedder: new HashEmbedder(), persistDir: dir, ...open });
    const script = chatItem('what does 时尚 mean');
    const plain = chatItem('what does serendipity mean');
    const long = chatItem(`tell me about ${'cats and dogs '.repeat(6)}`);
    for (const x of [script, plain, long]) await a.set(x.key, x.entry);
    expect(a.stats().indexed).toBe(3);
    await a.snapshot();
    await a.close();

    const b = new SemanticLayer({ embedder: new LatinOnly(), persistDir: dir, maxTextLength: 50, ...open });
    await b.ready();
    expect(b.stats().entries).toBe(3);
    expect(b.stats().indexed).toBe(1);
    expect(b.stats().unrepresentable).toBe(0); // not a lookup or a write
    for (const x of [script, plain, long]) expect((await b.get(x.key))?.value).toBe(x.entry.value);
    expect((await b.search(chatItem('What does serendipity mean?').query)).hit?.key.id).toBe(plain.key.id);
    await b.close();
  });
});

describe('SemanticLayer persistence', () => {
  it('writes an atomic snapshot and reloads it warm on start (graph + flat partitions, tags, deletions)', async () => {
    const dir = await tempDir();
    const emb = new TableEmbedder(16, 'table-v1');
    const a = new SemanticLayer({ embedder: emb, flatLimit: 8, persistDir: dir });
    const items = await populate(a, emb);
    // Points added after the graph was built still wait for their graph insert: the snapshot
    // inserts them before writing the graph.
    expect(a.stats().pendingGraphInserts).toBeGreaterThan(0);
    const path = await a.snapshot();
    expect(a.stats().pendingGraphInserts).toBe(0);
    expect(path).toMatch(/snap-/);
    const files = await readdir(path!);
    expect(files.sort()).toEqual(['entries.jsonl', 'graph-0.bin', 'manifest.json', 'partitions.json', 'vectors.f32'].sort());
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    const statsBefore = a.stats();
    await a.close();

    const warnings: string[] = [];
    const b = new SemanticLayer({ embedder: emb, flatLimit: 8, persistDir: dir, onWarning: (m) => warnings.push(m) });
    await b.ready();
    expect(warnings).toEqual([]);
    expect(b.stats()).toMatchObject({ entries: statsBefore.entries, indexed: statsBefore.indexed, partitions: statsBefore.partitions, graphPartitions: 1 });
    for (const x of [items[7]!, items[39]!, items[45]!]) expect((await b.search(x.query)).hit?.key.id).toBe(x.key.id);
    expect((await b.search(items[2]!.query)).hit).toBeUndefined(); // deleted before the snapshot
    expect(await b.deleteByTag('odd')).toBe(18);
    // New writes go into the reloaded graph (reusing deleted slots).
    emb.table.set('after reload', randomUnit(16));
    const late = chatItem('after reload');
    await b.set(late.key, late.entry);
    expect((await b.search(late.query)).hit?.key.id).toBe(late.key.id);
    await b.close(); // snapshots again (dirty)
    const c = new SemanticLayer({ embedder: emb, flatLimit: 8, persistDir: dir });
    expect((await c.search(late.query)).hit?.key.id).toBe(late.key.id);
    await c.close();
  });

  it('discards a torn snapshot (a file that fails its checksum) with a warning, never half-loading it', async () => {
    const dir = await tempDir();
    const emb = new TableEmbedder(16, 'table-v1');
    const a = new SemanticLayer({ embedder: emb, flatLimit: 8, persistDir: dir });
    await populate(a, emb);
    const path = (await a.snapshot())!;
    await a.close();
    const entries = join(path, 'entries.jsonl');
    const text = await readFile(entries, 'utf8');
    await writeFile(entries, text.slice(0, Math.floor(text.length / 2))); // torn write
    const warnings: string[] = [];
    const b = new SemanticLayer({ embedder: emb, flatLimit: 8, persistDir: dir, onWarning: (m) => warnings.push(m) });
    await b.ready();
    expect(warnings.join()).toMatch(/discarded the snapshot.*entries\.jsonl/);
    expect(b.stats()).toMatchObject({ entries: 0, indexed: 0, partitions: 0 });
    await b.close();
    expect(await readdir(dir)).toEqual([]); // the bad snapshot is gone, not retried
  });

  it('discards a snapshot made with another embedder (id or dimensions)', async () => {
    const dir = await tempDir();
    const emb = new TableEmbedder(16, 'table-v1');
    const a = new SemanticLayer({ embedder: emb, flatLimit: 8, persistDir: dir });
    await populate(a, emb);
    await a.close();
    const warnings: string[] = [];
    const b = new SemanticLayer({ embedder: new TableEmbedder(16, 'table-v2'), persistDir: dir, onWarning: (m) => warnings.push(m) });
    await b.ready();
    expect(warnings.join()).toMatch(/table-v1.*table-v2/);
    expect(b.size).toBe(0);
    await b.close();
  });

  it('rebuilds from an L2 layer (scan + semantic descriptors) when there is no usable snapshot', async () => {
    const dir = await tempDir();
    const l2 = new MemoryLayer({ maxEntries: 1_000 });
    const emb = new HashEmbedder(32);
    const items = ['how do I cancel my subscription', 'what payment methods do you accept', 'where is my order'].map((t) => chatItem(t));
    for (const x of items) l2.set(x.key, x.entry);
    const plain = chatItem('not semantic');
    l2.set(plain.key, { ...plain.entry, semantic: undefined } as never);
    const layer = new SemanticLayer({ embedder: emb, persistDir: dir, rebuildFrom: l2 });
    await layer.ready();
    expect(layer.stats()).toMatchObject({ entries: 4, indexed: 3 });
    expect(emb.calls).toBe(1); // one batch for the page
    for (const x of items) expect((await layer.search(x.query)).hit?.key.id).toBe(x.key.id);
    await layer.close();
    // Next start: the snapshot wins, no rebuild (and no embedding).
    const emb2 = new HashEmbedder(32);
    const again = new SemanticLayer({ embedder: emb2, persistDir: dir, rebuildFrom: l2 });
    await again.ready();
    expect(again.stats().entries).toBe(4);
    expect(emb2.calls).toBe(0);
    await again.close();
  });
});
