// The fleet section of the report (`--workers N`): the fleet's figures beside the same day on one
// worker process, and what each worker held, embedded and received through the semantic feed.
import type { RunFigures, Summary } from './summary.js';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const lag = (x: number | null) => (x === null ? '—' : `${x} ms`);
const label = (r: RunFigures) => `${r.workers} worker process${r.workers === 1 ? '' : 'es'}`;

function rows(s: Summary): RunFigures[] {
  const f = s.fleet!;
  return f.single ? [f.single, f.run] : [f.run];
}

/** L3 answers of the fleet relative to one worker process on the same day. */
export function l3Ratio(s: Summary): number | undefined {
  const f = s.fleet;
  if (!f?.single) return undefined;
  return f.single.L3 === 0 ? (f.run.L3 === 0 ? 1 : Infinity) : f.run.L3 / f.single.L3;
}

export function fleetText(s: Summary): string[] {
  const f = s.fleet;
  if (!f) return [];
  const out: string[] = [''];
  out.push(`Fleet: ${label(f.run)} sharing one Redis; their L3s follow each other through the semantic feed`);
  out.push('  run                        requests   hit rate      L1      L2      L3   upstream   wrong   stale   cross-tenant');
  for (const r of rows(s)) {
    out.push(
      `  ${label(r).padEnd(25)} ${int(r.requests).padStart(9)}   ${pct(r.hitRate).padStart(8)}  ${int(r.L1).padStart(6)}  ${int(r.L2).padStart(6)}  ${int(r.L3).padStart(6)}   ${int(r.upstream).padStart(8)}   ${String(r.wrongHits).padStart(5)}   ${String(r.stale).padStart(5)}   ${String(r.crossTenant).padStart(12)}`,
    );
  }
  const ratio = l3Ratio(s);
  if (ratio !== undefined)
    out.push(
      `  L3 answers: ${int(f.run.L3)} with ${label(f.run)} vs ${int(f.single!.L3)} with one → ${ratio.toFixed(2)}× (report of the one-process run: ${f.single!.reportPath})`,
    );
  out.push('  worker   requests   L3 entries held   texts embedded   entries from the feed   feed lag p50 / p99   re-syncs');
  for (const w of f.perWorker) {
    out.push(
      `  ${String(w.worker + 1).padStart(6)}   ${int(w.requests).padStart(8)}   ${int(w.entries).padStart(15)}   ${int(w.embeddings).padStart(14)}   ${int(w.applied).padStart(21)}   ${`${lag(w.lagP50Ms)} / ${lag(w.lagP99Ms)}`.padStart(18)}   ${String(w.resyncs).padStart(8)}`,
    );
  }
  return out;
}

function esc(x: unknown): string {
  return String(x).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

export function fleetHtml(s: Summary): string {
  const f = s.fleet;
  if (!f) return '';
  const runRows = rows(s)
    .map(
      (r) =>
        `<tr><td>${esc(label(r))}</td><td>${int(r.requests)}</td><td>${pct(r.hitRate)}</td><td>${int(r.L1)}</td><td>${int(r.L2)}</td><td>${int(r.L3)}</td><td>${int(r.upstream)}</td><td class="${r.wrongHits ? 'bad' : 'good'}">${r.wrongHits}</td><td class="${r.stale ? 'bad' : 'good'}">${r.stale}</td><td class="${r.crossTenant ? 'bad' : 'good'}">${r.crossTenant}</td></tr>`,
    )
    .join('');
  const workerRows = f.perWorker
    .map(
      (w) =>
        `<tr><td>${w.worker + 1}</td><td>${int(w.requests)}</td><td>${int(w.entries)}</td><td>${int(w.embeddings)}</td><td>${int(w.applied)}</td><td>${esc(lag(w.lagP50Ms))} / ${esc(lag(w.lagP99Ms))}</td><td>${w.resyncs}</td></tr>`,
    )
    .join('');
  const ratio = l3Ratio(s);
  return `<section><h2>Fleet: ${esc(label(f.run))} sharing one Redis</h2>
<p class="sub">Requests spread over the workers by conversation. Each has its own L1, L3 and embedder; L2 and the invalidation bus are shared, and every L3 follows the others' writes, deletes and purges through the semantic feed (vectors included).</p>
<table><tr><th>run</th><th>requests</th><th>hit rate</th><th>L1</th><th>L2</th><th>L3</th><th>upstream</th><th>wrong</th><th>stale</th><th>cross-tenant</th></tr>${runRows}</table>
${ratio !== undefined ? `<p>L3 answers with ${esc(label(f.run))}: <b>${ratio.toFixed(2)}×</b> those of one worker process on the same day.</p>` : ''}
<table><tr><th>worker</th><th>requests</th><th>L3 entries held</th><th>texts embedded</th><th>entries from the feed</th><th>feed lag p50 / p99</th><th>re-syncs</th></tr>${workerRows}</table></section>`;
}
