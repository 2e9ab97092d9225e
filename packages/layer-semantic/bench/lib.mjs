// Shared pieces of the layer-semantic benchmark: deterministic randomness, statistics, texts,
// machine state, and the "before" build of a package (its sources at a git revision) that the
// benchmark measures beside the current one in the same run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../../..');
export const log = (...a) => console.error('[bench]', ...a);

// ---------- deterministic randomness ----------
/** An independent mulberry32 stream (full 2^32 period) from `seed`. */
export function randomStream(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
let shared = randomStream(42);
/** The benchmark's shared stream (`reseed` restarts it). */
export const rand = () => shared();
export function reseed(s) {
  shared = randomStream(s);
}
export const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
export function normalise(v) {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i] * v[i];
  n = Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}
export function noisy(v, r) {
  const sd = r / Math.sqrt(v.length);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] + gauss() * sd;
  return normalise(out);
}
/** A synthetic vector near real sentence embeddings: a random mix of two real ones plus a little noise. */
export function mix(a, b) {
  const w = 0.5 + 0.5 * rand();
  const v = new Float32Array(a.length);
  for (let i = 0; i < v.length; i++) v[i] = w * a[i] + (1 - w) * b[i];
  return noisy(normalise(v), 0.1);
}

// ---------- statistics ----------
export const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
export const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
export const round1 = (x) => round(x, 1);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------- machine ----------
export const loadAvg = () => loadavg().map((x) => round(x, 2));
/** Linux CPU pressure: % of the last 10 s in which some runnable task waited for a CPU, or null. */
export function cpuPressure10s() {
  try {
    const m = /some avg10=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// ---------- texts ----------
export const dataDir = () => process.env.STRATA_DATA_DIR ?? resolve(repo, '../shared/data');

/** Short questions (QQP, ≤ 200 characters); a synthetic set when the shared data is absent. */
export function shortTexts(n) {
  const qqp = join(dataDir(), 'datasets/gptcache-benchmark/qqp_labeled_pairs.jsonl.gz');
  if (existsSync(qqp)) {
    const seen = new Set();
    for (const line of gunzipSync(readFileSync(qqp)).toString('utf8').split('\n')) {
      if (!line) continue;
      const { text_a, text_b } = JSON.parse(line);
      for (const t of [text_a, text_b]) if (t && t.length < 200) seen.add(t);
      if (seen.size >= n) break;
    }
    return { source: 'QQP questions (shared/data/datasets/gptcache-benchmark)', texts: [...seen] };
  }
  const subjects = ['password', 'invoice', 'refund', 'order', 'account', 'subscription', 'delivery', 'plan', 'card', 'address', 'email', 'app'];
  const verbs = ['reset', 'change', 'cancel', 'track', 'update', 'find', 'delete', 'upgrade', 'pay', 'verify'];
  const frames = [
    'How do I {v} my {s}?',
    'Can I {v} the {s} online?',
    'Why can I not {v} my {s}?',
    'What happens if I {v} my {s} twice?',
    'Is it possible to {v} my {s} today?',
  ];
  const texts = [];
  for (const f of frames) for (const v of verbs) for (const s of subjects) texts.push(f.replace('{v}', v).replace('{s}', s));
  return { source: 'synthetic support questions (shared data not present)', texts };
}

/**
 * Chat-length user turns (250–350 characters): real first turns from ShareGPT, or synthetic
 * turns of that length when the shared data is absent.
 */
export function chatTexts() {
  const dir = join(dataDir(), 'datasets/sharegpt-first-turn');
  const files = ['sg_90k_part1_html_cleaned_lang_first_sampled_sorted.json', 'ShareGPT_V3_filtered_1000.json'].map((f) => join(dir, f)).filter(existsSync);
  if (files.length > 0) {
    const seen = new Set();
    for (const f of files) {
      for (const c of JSON.parse(readFileSync(f, 'utf8'))) {
        const t = c.conversations?.[0]?.value;
        if (typeof t === 'string' && t.length >= 250 && t.length <= 350) seen.add(t);
      }
    }
    return { source: 'ShareGPT first user turns of 250–350 characters (shared/data/datasets/sharegpt-first-turn)', texts: [...seen] };
  }
  const { texts: short } = shortTexts(0);
  const texts = [];
  for (let i = 0; i < 300; i++) {
    let t = '';
    while (t.length < 280) t += short[(i * 7 + t.length) % short.length] + ' ';
    texts.push(t.trim());
  }
  return { source: 'synthetic chat turns of ≈ 300 characters (shared data not present)', texts };
}

/**
 * `n` distinct chat-length texts made of two real turns: the first half of one and the second
 * half of another (cut at a word), so no two are near-copies the way a numbered suffix would
 * make them. `offset` picks another set of pairs.
 */
export function recombined(base, n, offset = 0) {
  const halves = base.map((t) => {
    const cut = t.indexOf(' ', Math.floor(t.length / 2));
    return cut < 0 ? [t, ''] : [t.slice(0, cut), t.slice(cut + 1)];
  });
  const out = [];
  const m = base.length;
  for (let k = 0; out.length < n && k < m * (m - 1); k++) {
    const i = (k + offset) % m;
    const j = (i + 1 + Math.floor((k + offset * 7) / m)) % m;
    if (i === j) continue;
    out.push(`${halves[i][0]} ${halves[j][1]}`.trim());
  }
  return out;
}

// ---------- the "before" build ----------
/**
 * Builds a package's sources as they were at git revision `rev` into
 * `<package>/bench/.baseline/<name>/dist` (ignored by git) and resolves that directory, or
 * undefined (with the reason logged) when git or the revision is not available.
 */
export function buildAtRevision(packageDir, rev) {
  const name = packageDir.split('/').pop();
  const out = join(packageDir, 'bench/.baseline', name);
  const stamp = join(out, 'REVISION');
  try {
    if (existsSync(stamp) && readFileSync(stamp, 'utf8') === rev && existsSync(join(out, 'dist/index.js'))) return join(out, 'dist');
    const rel = packageDir.slice(repo.length + 1);
    const files = execFileSync('git', ['-C', repo, 'ls-tree', '-r', '--name-only', rev, `${rel}/src`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
    if (files.length === 0) throw new Error(`no ${rel}/src at ${rev}`);
    rmSync(out, { recursive: true, force: true });
    for (const f of files) {
      const dest = join(out, 'src', f.slice(rel.length + '/src/'.length));
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, execFileSync('git', ['-C', repo, 'show', `${rev}:${f}`]));
    }
    writeFileSync(
      join(out, 'tsconfig.json'),
      JSON.stringify({
        extends: join(repo, 'tsconfig.base.json'),
        compilerOptions: { rootDir: 'src', outDir: 'dist', declaration: false, declarationMap: false, sourceMap: false },
        include: ['src'],
      }),
    );
    try {
      execFileSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', join(out, 'tsconfig.json')], { stdio: 'pipe' });
    } catch (e) {
      // Old sources checked against today's types of their dependencies may not type-check; the
      // JavaScript is still emitted, and it is what runs.
      if (!existsSync(join(out, 'dist/index.js'))) throw e;
      log(`"before" build of ${name} at ${rev}: type errors against today's dependencies (JavaScript emitted, used as is)`);
    }
    writeFileSync(stamp, rev);
    return join(out, 'dist');
  } catch (e) {
    log(`no "before" build of ${name} at ${rev}: ${e.message.split('\n')[0]}`);
    return undefined;
  }
}

/** The revision the "before" figures are measured at: where this work started. */
export const BASELINE_REV = process.env.STRATA_BENCH_BASELINE_REV ?? '5ce6a2e';

/** Resolves once the layer has moved every point waiting in a graph partition's tail into its graph. */
export async function graphsSettled(layer) {
  while (layer.stats().pendingGraphInserts > 0) await new Promise((r) => setImmediate(r));
}
