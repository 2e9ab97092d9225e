// Benchmark data: GPTCache's benchmark files (never copied into the repo) + the project's look-alike set.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = resolve(pkgDir, '../..');

export function dataDir(flag) {
  return resolve(flag ?? process.env.STRATA_DATA_DIR ?? join(repoDir, '..', 'shared', 'data'));
}

export function gptcacheDir(root) {
  const dir = join(root, 'datasets', 'gptcache-benchmark');
  if (!existsSync(join(dir, 'qqp_labeled_pairs.jsonl.gz'))) {
    throw new Error(`semantic-guards bench: GPTCache benchmark data not found in ${dir} (set STRATA_DATA_DIR or --data-dir)`);
  }
  return dir;
}

/** All 80,854 QQP pairs in file order, each with its index. */
export function loadQqp(root) {
  const buf = readFileSync(join(gptcacheDir(root), 'qqp_labeled_pairs.jsonl.gz'));
  return gunzipSync(buf)
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l, i) => ({ i, ...JSON.parse(l) }));
}

export function loadMock(root) {
  return JSON.parse(readFileSync(join(gptcacheDir(root), 'mock_data.json'), 'utf8'));
}

export function loadLookalikes() {
  return readFileSync(join(pkgDir, 'data', 'lookalikes.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

/** xorshift32 stream in [0, 1). */
export function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Deterministic permutation (xorshift32 Fisher-Yates, fixed seed) so any prefix is a reproducible sample. */
export function permutation(n, seed = 0x5eed) {
  const p = Array.from({ length: n }, (_, i) => i);
  const rnd = rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

export const QQP_TUNE = 60000;

/** Minimal RFC 4180 CSV parser (quoted fields, doubled quotes, commas and newlines inside quotes). */
export function parseCsv(text) {
  const rows = [];
  let row = [],
    field = '',
    q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else q = false;
      } else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** BANKING77 (PolyAI, CC BY 4.0): { train, test, intents } with rows { text, intent }. */
export function loadBanking77(root) {
  const dir = join(root, 'datasets', 'banking77');
  if (!existsSync(join(dir, 'train.csv'))) {
    throw new Error(`semantic-guards bench: banking77 not found in ${dir} (set STRATA_DATA_DIR or --data-dir)`);
  }
  const read = (f) => {
    const [head, ...rows] = parseCsv(readFileSync(join(dir, f), 'utf8'));
    if (head[0] !== 'text' || head[1] !== 'category') throw new Error(`banking77 ${f}: unexpected header ${head}`);
    return rows.map(([text, intent]) => ({ text, intent }));
  };
  const intents = JSON.parse(readFileSync(join(dir, 'categories.json'), 'utf8'));
  return { train: read('train.csv'), test: read('test.csv'), intents };
}

/**
 * Arena-Hard prompts (lmarena/arena-hard-auto, Apache-2.0): real Chatbot Arena user prompts, each a
 * different question. { v01, v2 } with rows { uid, group, prompt }: v0.1 (500 prompts, 2 per topic
 * cluster) and v2.0 (750 prompts, by subcategory).
 */
export function loadArena(root) {
  const dir = join(root, 'datasets', 'arena-hard');
  const read = (f, group) =>
    readFileSync(join(dir, f), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .map((r) => ({ uid: r.uid, group: group(r), prompt: r.prompt }));
  return {
    v01: read('arena-hard-v0.1_question.jsonl', (r) => r.cluster),
    v2: read('arena-hard-v2.0_question.jsonl', (r) => r.subcategory ?? r.category),
  };
}
