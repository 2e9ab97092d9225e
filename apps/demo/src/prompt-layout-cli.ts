#!/usr/bin/env node
// pnpm --filter @strata-cache/demo prompt-layout [-- --api anthropic --requests 300 --seed 42 --json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { measurePromptLayout, renderPromptLayout } from './prompt-layout-run.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: { api: { type: 'string' }, requests: { type: 'string' }, seed: { type: 'string' }, json: { type: 'string' } },
});
if (values.api !== undefined && values.api !== 'openai' && values.api !== 'anthropic') {
  console.error('--api must be openai or anthropic');
  process.exit(2);
}
const report = await measurePromptLayout({
  ...(values.api ? { api: values.api as 'openai' | 'anthropic' } : {}),
  ...(values.requests ? { requests: Number(values.requests) } : {}),
  ...(values.seed ? { seed: Number(values.seed) } : {}),
});
console.log(renderPromptLayout(report));
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
