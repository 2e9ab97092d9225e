import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as conv from '@tensorflow/tfjs-converter';
import '@tensorflow/tfjs-backend-wasm';
import { UseTokenizer, defaultModelDir } from '../dist/index.js';
const dir = defaultModelDir();
tf.env().set('PROD', true);
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
await tf.setBackend('wasm'); await tf.ready();
const mj = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
const bufs = mj.weightsManifest[0].paths.map((p) => readFileSync(join(dir, p)));
const all = Buffer.concat(bufs);
const model = await conv.loadGraphModel({ load: async () => ({ modelTopology: mj.modelTopology, weightSpecs: mj.weightsManifest[0].weights, weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) }) });
const tok = new UseTokenizer(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')));
const d = JSON.parse(readFileSync('/work/shared/data/datasets/sharegpt-first-turn/sg_90k_part1_html_cleaned_lang_first_sampled_sorted.json','utf8'));
const chat = [...new Set(d.map(x=>x.conversations[0].value).filter(t=>t.length>=250&&t.length<=350))];
const rows = chat.map(t=>tok.encode(t)).filter(r=>r.length>=88&&r.length<=96);
const bs = Number(process.argv[2] ?? 1);
function inputs() {
  const ind = [], val = [];
  rows.slice(0,bs).forEach((r, i) => r.forEach((id, j) => { ind.push(i, j); val.push(id); }));
  return { indices: tf.tensor2d(ind, [val.length, 2], 'int32'), values: tf.tensor1d(val, 'int32') };
}
for (let i = 0; i < 3; i++) { const o = await model.executeAsync(inputs()); await o.data(); o.dispose(); }
const by = {}; let tot=[];
for (let rep=0; rep<8; rep++){
  const p = await tf.profile(async () => { const o = await model.executeAsync(inputs()); await o.data(); o.dispose(); });
  const k = {}; for (const x of p.kernels) k[x.name+' '+JSON.stringify(x.inputShapes[0])] = (k[x.name+' '+JSON.stringify(x.inputShapes[0])]??0)+x.kernelTimeMs;
  for (const [n,v] of Object.entries(k)) (by[n]??=[]).push(v);
  tot.push(p.kernels.reduce((s,x)=>s+x.kernelTimeMs,0));
}
const med = xs => [...xs].sort((a,b)=>a-b)[xs.length>>1];
console.log('bs', bs, 'tokens', rows.slice(0,bs).map(r=>r.length).join(','), 'total median', med(tot).toFixed(2));
console.log(Object.entries(by).map(([n,v])=>[n,med(v)]).sort((a,b)=>b[1]-a[1]).slice(0,22).map(([n,v])=>`${v.toFixed(2)} ${n}`).join('\n'));
