#!/usr/bin/env node
// Checks that the demo's HTML report renders in headless Chromium.
//
//   node scripts/check-render.mjs [REPORT.html] [--png OUT.png]
//
// Without a report it runs a short demo (300 requests, simulated provider, fast latencies) and
// checks that report. Skips (exit 0) when no Chromium is installed: `apt-get install chromium`,
// or point $CHROMIUM at a Chrome/Chromium binary. Needs the built app (`pnpm build`).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkReportRenders, findChromium } from '../dist/render-check.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const pngAt = args.indexOf('--png');
const pngOut = pngAt >= 0 ? args.splice(pngAt, 2)[1] : undefined;
const chromium = findChromium();
if (!chromium) {
  console.log('check-render: skipped — no chromium on PATH (apt-get install chromium, or set CHROMIUM=/path/to/chrome)');
  process.exit(0);
}
let report = args[0];
let tmp;
if (!report) {
  const { runDemo } = await import('../dist/demo.js');
  tmp = mkdtempSync(join(tmpdir(), 'strata-check-render-'));
  console.log('check-render: running a short demo (300 requests, simulated provider) …');
  const run = await runDemo({ requests: 300, concurrency: 8, latencyScale: 0.05, provider: 'simulated', print: false, env: {}, out: join(tmp, 'report.html') });
  report = run.htmlPath;
}
try {
  const r = checkReportRenders(chromium, report);
  if (pngOut) writeFileSync(pngOut, r.png);
  const colours = Object.entries(r.colours)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  if (r.ok) console.log(`check-render: ok — ${report} renders in ${chromium} (chart pixels: ${colours})`);
  else console.error(`check-render: FAILED — ${report}: ${r.problems.join('; ')}`);
  process.exitCode = r.ok ? 0 : 1;
} finally {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
