import { fleetHtml, fleetText } from './fleet-report.js';
import { calibrationHtml, calibrationText } from './calibration.js';
import { KIND_LABEL, KIND_ORDER, PATHS, type Summary } from './summary.js';

const PATH_LABEL: Record<string, string> = { L1: 'L1 memory', L2: 'L2 redis', L3: 'L3 semantic', upstream: 'upstream' };
const PATH_LAYER: Record<string, string> = { L1: 'memory', L2: 'redis', L3: 'semantic' };

/** Of the lookups that reached the layer, the share it answered (from the cache's own counters). */
function layerHitRate(s: Summary, path: string): string {
  const l = s.cacheStats.layers[PATH_LAYER[path] ?? ''];
  if (!l || l.hits + l.misses === 0) return '—';
  return pct(l.hits / (l.hits + l.misses));
}
export const COLORS: Record<string, string> = { L1: '#2f7d32', L2: '#1565c0', L3: '#8e44ad', upstream: '#c0392b' };

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const usd = (x: number) => (x >= 100 ? `$${int(x)}` : x >= 1 ? `$${x.toFixed(2)}` : `$${x.toFixed(4)}`);
function ms(x: number | null): string {
  if (x === null) return '—';
  if (x < 1) return `${x.toFixed(2)} ms`;
  if (x < 100) return `${x.toFixed(1)} ms`;
  return `${int(x)} ms`;
}
function tokens(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return int(n);
}

/** The end-of-run summary printed to the terminal. */
export function renderText(s: Summary, reportPath: string | undefined): string {
  const out: string[] = [];
  const sim = s.provider.simulated;
  out.push('');
  out.push(`Strata demo — ${s.workload.name}: ${int(s.requests)} requests, tenants ${s.workload.tenants.join(' + ')}, concurrency ${s.workload.concurrency}`);
  out.push(`Upstream: ${s.provider.label} (model ${s.provider.model})${sim ? ' — SIMULATED, no API key used' : ''}`);
  for (const c of s.components) out.push(`  · ${c}`);
  for (const m of s.missing) out.push(`  ! ${m}`);
  out.push('');
  out.push(
    `Hits ${int(s.hits)} / ${int(s.requests)} (${pct(s.hitRate)})   misses ${int(s.misses)}${s.errors ? `   errors ${s.errors}` : ''}   in ${(s.wallMs / 1000).toFixed(1)} s`,
  );
  out.push('  path           requests   share      p50         p95   layer hit rate');
  for (const p of PATHS) {
    const f = s.byPath[p];
    if (p === 'L2' && f.count === 0 && !s.components.some((c) => c.startsWith('L2 redis —') && !c.includes('off'))) {
      out.push(`  ${PATH_LABEL[p]!.padEnd(14)} ${'off'.padStart(8)}`);
      continue;
    }
    const label = p === 'upstream' && sim ? 'upstream (sim)' : PATH_LABEL[p]!;
    const lhr = p === 'upstream' ? '' : `   ${layerHitRate(s, p).padStart(6)}`;
    out.push(`  ${label.padEnd(14)} ${int(f.count).padStart(8)}   ${pct(f.share).padStart(6)}   ${ms(f.p50Ms).padStart(9)}   ${ms(f.p95Ms).padStart(9)}${lhr}`);
  }
  const faults = Object.entries(s.cacheStats.layers).filter(([, l]) => l.errors > 0);
  if (faults.length > 0) {
    out.push(
      `  layer errors (fail-open: those lookups fell through to the next layer): ${faults.map(([n, l]) => `${n} ${l.errors}${l.timeouts ? ` (${l.timeouts} over budget)` : ''}`).join(', ')}`,
    );
  }
  out.push('');
  out.push('  by kind of request          count   hit rate    L1    L2    L3   upstream');
  for (const k of KIND_ORDER) {
    const f = s.byKind[k];
    if (!f) continue;
    out.push(
      `  ${KIND_LABEL[k].padEnd(27)} ${int(f.count).padStart(6)}   ${pct(f.hits / f.count).padStart(7)}  ${int(f.L1).padStart(5)} ${int(f.L2).padStart(5)} ${int(f.L3).padStart(5)}   ${int(f.upstream).padStart(7)}`,
    );
  }
  if (s.calibration) out.push(...calibrationText(s.calibration), '');
  else out.push('');
  const c = s.checks;
  out.push(
    `Ground truth: ${int(c.checked)} served answers checked${c.unchecked ? ` (${int(c.unchecked)} unchecked)` : ''} — wrong semantic hits ${c.wrongHits}, stale answers ${c.stale}, cross-tenant answers ${c.crossTenant}`,
  );
  if (c.wrongHits > 0) {
    const by = Object.entries(c.wrongHitsByPath)
      .map(([p, k]) => `${k} from ${PATH_LABEL[p] ?? p}`)
      .join(', ');
    out.push(
      `  wrong semantic hits served: ${by}${c.wrongHitsByPath['L1'] || c.wrongHitsByPath['L2'] ? " (L1/L2 replay a semantic answer only when backfillSemanticHits copies it under the asker's exact key)" : ''}`,
    );
    for (const p of c.wrongPairs.slice(0, 4)) out.push(`    ${p.count}× asked ${p.asked}, got the answer to ${p.served} — e.g. "${p.example}"`);
  }
  if (c.guardRejections > 0) {
    const by = Object.entries(c.rejectionsByGuard)
      .sort((a, b) => b[1] - a[1])
      .map(([g, k]) => `${g} ${k}`)
      .join(', ');
    out.push(`  guards turned down ${int(c.guardRejections)} look-alike candidates above the threshold (${by})`);
  }
  if (c.lookalikes > 0) out.push(`  look-alike questions: ${int(c.lookalikesServedRight)} / ${int(c.lookalikes)} served their own answer`);
  if (c.labelMismatches > 0) out.push(`  ! ${c.labelMismatches} upstream answers disagree with the workload's labels`);
  for (const e of s.invalidation.events) {
    const purged = Object.entries(e.purged)
      .map(([l, k]) => `${l} ${k}`)
      .join(', ');
    const a = s.invalidation.after;
    out.push(
      `Pricing changed for ${e.tenant} after request ${int(e.atRequest)}: ${e.detail} purged ${purged || 'nothing'} in ${ms(e.durationMs)}; ` +
        `${a.pricingRequests} ${e.tenant} pricing requests afterwards — ${a.current} quoted the new prices (${a.fromUpstream} upstream, ${a.fromCache} from the refilled cache), ${a.stale} stale`,
    );
  }
  out.push('');
  const u = s.upstream;
  out.push(
    `Upstream calls ${int(u.calls)} (avoided ${int(u.avoided)}${u.coalesced ? `, ${int(u.coalesced)} joined an identical in-flight call` : ''}` +
      `${u.joinedSimilar.waited ? `, ${int(u.joinedSimilar.waited)} waited for a similar question's answer in flight and ${int(u.joinedSimilar.served)} were served it` : ''})` +
      `   tokens avoided ${tokens(u.tokensAvoided.input)} in + ${tokens(u.tokensAvoided.output)} out`,
  );
  out.push(`USD: upstream spend ${usd(s.usd.upstream)}, saved by Strata ${usd(s.usd.saved)}${sim ? ' (simulated traffic at list prices)' : ''}`);
  const m = s.usd.monthly;
  out.push(
    `  monthly projection at ${int(m.dailyRequests)} requests/day: ${usd(m.usd)}  (= daily × hit rate ${pct(m.hitRate)} × ${int(m.tokensPerRequest)} tokens/1e6 × $${m.pricePerMillion.toFixed(2)}/M × 30)`,
  );
  out.push(
    `Provider prompt cache (the provider's discount, not Strata's; counted apart): ${tokens(s.providerPromptCache.cachedTokens)} cached prompt tokens, ${usd(s.providerPromptCache.usdSaved)}`,
  );
  out.push(...fleetText(s));
  if (reportPath) out.push(`\nReport: ${reportPath}`);
  const verdict =
    s.exitCode === 0
      ? 'OK: no stale and no cross-tenant answer was served.'
      : `FAILED: ${c.stale} stale and ${c.crossTenant} cross-tenant answers were served (exit code 1).`;
  out.push(verdict);
  return out.join('\n');
}

function esc(x: unknown): string {
  return String(x).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** Stacked share of each path per bucket of requests, with the event marked. */
function hitsChart(s: Summary): string {
  const W = 760;
  const H = 260;
  const L = 44;
  const B = 30;
  const T = 12;
  const R = 12;
  const bs = s.timeline.buckets;
  const plotW = W - L - R;
  const plotH = H - T - B;
  const bw = plotW / Math.max(1, bs.length);
  const parts: string[] = [];
  bs.forEach((b, i) => {
    const total = b.L1 + b.L2 + b.L3 + b.upstream || 1;
    let y = T + plotH;
    for (const p of PATHS) {
      const h = (b[p] / total) * plotH;
      if (h <= 0) continue;
      y -= h;
      parts.push(
        `<rect x="${(L + i * bw + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[p]}"><title>${esc(PATH_LABEL[p])}: ${b[p]} of requests up to ${b.upTo}</title></rect>`,
      );
    }
  });
  for (let k = 0; k <= 4; k++) {
    const y = T + plotH - (k / 4) * plotH;
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#0002"/><text x="${L - 6}" y="${y + 4}" text-anchor="end" class="ax">${k * 25}%</text>`,
    );
  }
  const n = s.requests || 1;
  for (const e of s.timeline.eventSeq) {
    const x = L + (e / n) * plotW;
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${T}" y2="${T + plotH}" stroke="#000" stroke-width="2" stroke-dasharray="5 4"/>` +
        `<rect x="${x + 3}" y="${T + 3}" width="96" height="16" rx="3" fill="#fff" opacity="0.9"/><text x="${x + 7}" y="${T + 15}" class="ev">pricing changed</text>`,
    );
  }
  parts.push(
    `<text x="${L + plotW / 2}" y="${H - 6}" text-anchor="middle" class="ax">requests through the day (${bs.length} buckets of ${bs[0] ? bs[0].upTo : 0})</text>`,
  );
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="hits by layer over time">${parts.join('')}</svg>`;
}

/** p50 and p95 per path on a log scale. */
function latencyChart(s: Summary): string {
  const W = 760;
  const rows = PATHS.filter((p) => s.byPath[p].count > 0);
  const rowH = 46;
  const H = 40 + rows.length * rowH;
  const L = 120;
  const R = 200;
  const vals = rows.flatMap((p) => [s.byPath[p].p50Ms ?? 0, s.byPath[p].p95Ms ?? 0]).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.max(0.001, Math.min(...vals, 1))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...vals, 10)));
  const x = (v: number) => L + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - L - R);
  const parts: string[] = [];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    parts.push(
      `<line x1="${x(d)}" x2="${x(d)}" y1="10" y2="${H - 24}" stroke="#0002"/><text x="${x(d)}" y="${H - 8}" text-anchor="middle" class="ax">${d >= 1 ? int(d) : d} ms</text>`,
    );
  }
  rows.forEach((p, i) => {
    const f = s.byPath[p];
    const y = 16 + i * rowH;
    parts.push(`<text x="${L - 8}" y="${y + 18}" text-anchor="end" class="lb">${esc(PATH_LABEL[p])}</text>`);
    parts.push(
      `<rect x="${L}" y="${y}" width="${(x(f.p95Ms ?? lo) - L).toFixed(1)}" height="26" fill="${COLORS[p]}" opacity="0.35"><title>p95 ${ms(f.p95Ms)}</title></rect>`,
    );
    parts.push(
      `<rect x="${L}" y="${y + 5}" width="${(x(f.p50Ms ?? lo) - L).toFixed(1)}" height="16" fill="${COLORS[p]}"><title>p50 ${ms(f.p50Ms)}</title></rect>`,
    );
    parts.push(`<text x="${x(f.p95Ms ?? lo) + 6}" y="${y + 18}" class="lb">p50 ${esc(ms(f.p50Ms))} · p95 ${esc(ms(f.p95Ms))}</text>`);
  });
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="latency by path">${parts.join('')}</svg>`;
}

/** Cumulative USD saved by hits and spent on upstream calls. */
function savingsChart(s: Summary): string {
  const W = 760;
  const H = 260;
  const L = 64;
  const B = 30;
  const T = 28;
  const R = 12;
  const pts = s.cumulative;
  const n = s.requests || 1;
  const max = Math.max(1e-9, ...pts.map((p) => Math.max(p.saved, p.spent)));
  const x = (seq: number) => L + (seq / n) * (W - L - R);
  const y = (v: number) => T + (H - T - B) * (1 - v / max);
  const line = (key: 'saved' | 'spent') => pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.seq).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
  const parts: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#0002"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" class="ax">${esc(usd(v))}</text>`,
    );
  }
  for (const e of s.timeline.eventSeq) {
    parts.push(`<line x1="${x(e)}" x2="${x(e)}" y1="${T}" y2="${H - B}" stroke="#000" stroke-width="2" stroke-dasharray="5 4"/>`);
  }
  parts.push(`<path d="${line('saved')}" fill="none" stroke="${COLORS['L1']}" stroke-width="3"/>`);
  parts.push(`<path d="${line('spent')}" fill="none" stroke="${COLORS['upstream']}" stroke-width="3"/>`);
  const last = pts[pts.length - 1];
  if (last) {
    parts.push(
      `<text x="${x(last.seq) - 4}" y="${Math.max(T + 12, y(last.saved) - 6)}" text-anchor="end" class="lb" fill="${COLORS['L1']}">saved ${esc(usd(last.saved))}</text>`,
    );
    parts.push(
      `<text x="${x(last.seq) - 4}" y="${y(last.spent) + 16}" text-anchor="end" class="lb" fill="${COLORS['upstream']}">spent upstream ${esc(usd(last.spent))}</text>`,
    );
  }
  parts.push(`<text x="${L + (W - L - R) / 2}" y="${H - 6}" text-anchor="middle" class="ax">requests through the day</text>`);
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="cumulative savings">${parts.join('')}</svg>`;
}

/** A self-contained HTML page (inline CSS and SVG, no scripts, no network). */
export function renderHtml(s: Summary): string {
  const sim = s.provider.simulated;
  const c = s.checks;
  const legend = PATHS.map((p) => `<span class="key"><i style="background:${COLORS[p]}"></i>${esc(PATH_LABEL[p])}</span>`).join('');
  const kindRows = KIND_ORDER.filter((k) => s.byKind[k])
    .map((k) => {
      const f = s.byKind[k]!;
      return `<tr><td>${esc(KIND_LABEL[k])}</td><td>${int(f.count)}</td><td>${pct(f.hits / f.count)}</td><td>${f.L1}</td><td>${f.L2}</td><td>${f.L3}</td><td>${f.upstream}</td></tr>`;
    })
    .join('');
  const pathRows = PATHS.map((p) => {
    const f = s.byPath[p];
    return `<tr><td><i class="sw" style="background:${COLORS[p]}"></i>${esc(PATH_LABEL[p])}${p === 'upstream' && sim ? ' (simulated)' : ''}</td><td>${int(f.count)}</td><td>${pct(f.share)}</td><td>${esc(ms(f.p50Ms))}</td><td>${esc(ms(f.p95Ms))}</td><td>${p === 'upstream' ? '' : layerHitRate(s, p)}</td></tr>`;
  }).join('');
  const semRows = s.examples.semanticHits
    .map(
      (e) =>
        `<tr><td>${esc(e.query)}</td><td>${esc(e.matched)}</td><td>${e.similarity.toFixed(3)}</td><td class="${e.verdict === 'ok' ? 'good' : 'bad'}">${esc(e.verdict)}</td></tr>`,
    )
    .join('');
  const rejRows = s.examples.rejected
    .map((e) => `<tr><td>${esc(e.query)}</td><td>${esc(e.guards.join(', '))}</td><td>${esc(PATH_LABEL[e.servedFrom])}</td></tr>`)
    .join('');
  const wrongRows = s.examples.wrong
    .map(
      (e) =>
        `<tr><td>${esc(e.query)}</td><td>${esc(PATH_LABEL[e.path] ?? e.path)}</td><td>${esc(e.matched ?? '')}</td><td>${esc(e.intent ?? '')}</td><td>${esc(e.servedIntent ?? '')}</td><td class="bad">${esc(e.verdict)}</td></tr>`,
    )
    .join('');
  const ev = s.invalidation.events
    .map((e) => {
      const a = s.invalidation.after;
      const purged =
        Object.entries(e.purged)
          .map(([l, k]) => `${esc(l)} ${k}`)
          .join(', ') || 'nothing';
      return `<p><b>Pricing changed for ${esc(e.tenant)}</b> after request ${int(e.atRequest)} (${esc(e.detail)}): purged ${purged} in ${esc(ms(e.durationMs))}.
      Afterwards ${a.pricingRequests} ${esc(e.tenant)} pricing requests: <b>${a.current}</b> quoted the new prices (${a.fromUpstream} upstream, ${a.fromCache} from the refilled cache), <b class="${a.stale ? 'bad' : 'good'}">${a.stale} stale</b>.</p>`;
    })
    .join('');
  const m = s.usd.monthly;
  const status =
    s.exitCode === 0
      ? `<div class="ok">No stale and no cross-tenant answer was served.</div>`
      : `<div class="fail">${c.stale} stale and ${c.crossTenant} cross-tenant answers were served.</div>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strata demo report — ${esc(s.workload.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.sub{color:#555;margin:0 0 16px}.sim{display:inline-block;background:#fff3cd;border:1px solid #e0c060;border-radius:4px;padding:1px 6px;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px #0001}
.card b{display:block;font-size:24px}.card span{color:#555;font-size:13px}
section{background:#fff;border-radius:8px;padding:14px 16px;margin-top:16px;box-shadow:0 1px 2px #0001}
table{border-collapse:collapse;width:100%;font-size:14px}td,th{padding:4px 8px;border-bottom:1px solid #eee;text-align:left}
th{color:#555;font-weight:600}.sw{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
.key{margin-right:14px;font-size:13px}.key i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.ax{font-size:11px;fill:#555}.lb{font-size:12px;fill:#1d2330}.ev{font-size:11px;font-weight:600}
.good{color:#2f7d32;font-weight:600}.bad{color:#c0392b;font-weight:600}td.good,td.bad{white-space:nowrap}
.ok{background:#e8f5e9;border:1px solid #a5d6a7;padding:8px 12px;border-radius:6px;margin-top:12px}
.fail{background:#fdecea;border:1px solid #f5a9a0;padding:8px 12px;border-radius:6px;margin-top:12px}
ul{margin:4px 0;padding-left:20px}code{background:#f0f0f0;padding:0 3px;border-radius:3px}
</style></head><body><main>
<h1>Strata demo — ${esc(s.workload.name)}</h1>
<p class="sub">${int(s.requests)} requests · tenants ${esc(s.workload.tenants.join(', '))} · concurrency ${s.workload.concurrency} · ${(s.wallMs / 1000).toFixed(1)} s ·
upstream: ${sim ? '<span class="sim">SIMULATED provider</span> ' : ''}${esc(s.provider.label)} (model ${esc(s.provider.model)}) · ${esc(s.generatedAt)}</p>
<div class="cards">
<div class="card"><b>${pct(s.hitRate)}</b><span>hit rate (${int(s.hits)} of ${int(s.requests)})</span></div>
<div class="card"><b>${int(s.upstream.avoided)}</b><span>upstream calls avoided (${int(s.upstream.calls)} made)</span></div>
<div class="card"><b>${esc(usd(s.usd.saved))}</b><span>saved this run${sim ? ' (simulated)' : ''}; spent ${esc(usd(s.usd.upstream))}</span></div>
<div class="card"><b>${esc(usd(m.usd))}</b><span>monthly projection at ${int(m.dailyRequests)} requests/day</span></div>
</div>
${status}
${fleetHtml(s)}
<section><h2>Hits by layer over time</h2><div>${legend}</div>${hitsChart(s)}</section>
<section><h2>Latency by path</h2><p class="sub">Bars: p50 (solid) and p95 (light), log scale. Upstream latency is ${sim ? 'the simulated provider’s (time to first token + per-token pacing)' : 'the real provider’s'}.</p>${latencyChart(s)}
<table><tr><th>path</th><th>requests</th><th>share of requests</th><th>p50</th><th>p95</th><th>layer hit rate<sup>*</sup></th></tr>${pathRows}</table>
<p class="sub"><sup>*</sup> of the lookups that reached the layer (missed every layer above it), the share it answered.</p></section>
<section><h2>Cumulative savings</h2>${savingsChart(s)}
<p>Tokens avoided: ${int(s.upstream.tokensAvoided.input)} input + ${int(s.upstream.tokensAvoided.output)} output.
Monthly projection (seed formula): ${int(m.dailyRequests)} requests/day × hit rate ${pct(m.hitRate)} × ${int(m.tokensPerRequest)} tokens/1e6 × $${m.pricePerMillion.toFixed(2)} per 1M tokens × 30 = <b>${esc(usd(m.usd))}</b>.</p>
<p>Provider prompt cache, counted separately (the provider's own discount, not Strata's): ${int(s.providerPromptCache.cachedTokens)} cached prompt tokens, ${esc(usd(s.providerPromptCache.usdSaved))}.</p></section>
<section><h2>Ground truth</h2>
<p>Every served answer is traced to the tenant, question and price list it was written for. Checked ${int(c.checked)}${c.unchecked ? `, unchecked ${int(c.unchecked)}` : ''}:
wrong semantic hits <b class="${c.wrongHits ? 'bad' : 'good'}">${c.wrongHits}</b>, stale answers <b class="${c.stale ? 'bad' : 'good'}">${c.stale}</b>, cross-tenant answers <b class="${c.crossTenant ? 'bad' : 'good'}">${c.crossTenant}</b>.
Guards turned down ${int(c.guardRejections)} look-alike candidates${
    c.guardRejections
      ? ` (${esc(
          Object.entries(c.rejectionsByGuard)
            .map(([g, k]) => `${g} ${k}`)
            .join(', '),
        )})`
      : ''
  };
${int(c.lookalikesServedRight)} of ${int(c.lookalikes)} look-alike questions got their own answer.</p>
${ev}
${c.wrongPairs.length ? `<h2>Wrong semantic hits by pair</h2><table><tr><th>asked</th><th>got the answer to</th><th>times</th><th>example question</th></tr>${c.wrongPairs.map((p) => `<tr><td>${esc(p.asked)}</td><td>${esc(p.served)}</td><td>${p.count}</td><td>${esc(p.example)}</td></tr>`).join('')}</table>` : ''}
${wrongRows ? `<h2>Answers that failed the check (first ${s.examples.wrong.length})</h2><table><tr><th>question</th><th>served from</th><th>matched</th><th>asked</th><th>served</th><th>verdict</th></tr>${wrongRows}</table>` : ''}
</section>
${s.calibration ? `<section>${calibrationHtml(s.calibration, esc)}</section>` : ''}
<section><h2>By kind of request</h2><table><tr><th>kind</th><th>count</th><th>hit rate</th><th>L1</th><th>L2</th><th>L3</th><th>upstream</th></tr>${kindRows}</table></section>
${semRows ? `<section><h2>Semantic hits (sample)</h2><table><tr><th>question</th><th>answered from</th><th>similarity</th><th>check</th></tr>${semRows}</table></section>` : ''}
${rejRows ? `<section><h2>Look-alikes the guards kept apart (sample)</h2><table><tr><th>question</th><th>guards</th><th>served from</th></tr>${rejRows}</table></section>` : ''}
<section><h2>Stack</h2><ul>${s.components.map((x) => `<li>${esc(x)}</li>`).join('')}${s.missing.map((x) => `<li class="bad">${esc(x)}</li>`).join('')}</ul></section>
</main></body></html>
`;
}
