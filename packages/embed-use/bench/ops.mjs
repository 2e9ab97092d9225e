// Kernel-level profile of one USE-lite call (TF.js graph as shipped, executeAsync): node bench/ops.mjs [wasm|cpu]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as conv from '@tensorflow/tfjs-converter';
import '@tensorflow/tfjs-backend-wasm';
import { UseTokenizer, defaultModelDir } from '../dist/index.js';

const dir = defaultModelDir();
tf.env().set('PROD', true);
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
await tf.setBackend(process.argv[2] ?? 'wasm');
await tf.ready();
const mj = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
const bufs = mj.weightsManifest[0].paths.map((p) => readFileSync(join(dir, p)));
const all = Buffer.concat(bufs);
const model = await conv.loadGraphModel({
  load: async () => ({
    modelTopology: mj.modelTopology,
    weightSpecs: mj.weightsManifest[0].weights,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
  }),
});
const tok = new UseTokenizer(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')));
function inputs(texts) {
  const rows = texts.map((t) => tok.encode(t));
  const ind = [],
    val = [];
  rows.forEach((r, i) =>
    r.forEach((id, j) => {
      ind.push(i, j);
      val.push(id);
    }),
  );
  return { indices: tf.tensor2d(ind, [val.length, 2], 'int32'), values: tf.tensor1d(val, 'int32') };
}
const q = ['How do I reset my password?'];
for (let i = 0; i < 5; i++) {
  const o = await model.executeAsync(inputs(q));
  await o.data();
  o.dispose();
}
try {
  const o = model.execute(inputs(q));
  console.log('sync execute works');
  o.dispose();
} catch (e) {
  console.log('sync execute:', e.message.slice(0, 200));
}
const p = await tf.profile(async () => {
  const o = await model.executeAsync(inputs(q));
  await o.data();
  o.dispose();
});
const by = {};
for (const k of p.kernels) {
  const b = (by[k.name] ??= { n: 0, ms: 0 });
  b.n++;
  b.ms += k.kernelTimeMs;
}
console.log('kernels', p.kernels.length, 'sum kernel ms', p.kernels.reduce((s, k) => s + k.kernelTimeMs, 0).toFixed(2));
console.log(
  Object.entries(by)
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 25)
    .map(([k, v]) => `${k} n=${v.n} ${v.ms.toFixed(2)}ms`)
    .join('\n'),
);
// End-to-end breakdown
const lat = { exec: [], data: [] };
for (let i = 0; i < 40; i++) {
  const inp = inputs(q);
  let s = performance.now();
  const o = await model.executeAsync(inp);
  lat.exec.push(performance.now() - s);
  s = performance.now();
  await o.data();
  lat.data.push(performance.now() - s);
  o.dispose();
  tf.dispose(Object.values(inp));
}
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(2);
console.log('executeAsync p50', p50(lat.exec), 'data p50', p50(lat.data), 'tensors', tf.memory().numTensors);
for (let rep = 0; rep < 3; rep++) {
  const p2 = await tf.profile(async () => {
    const o = await model.executeAsync(inputs(q));
    await o.data();
    o.dispose();
  });
  console.log(
    'rep',
    rep,
    'sum',
    p2.kernels.reduce((s, k) => s + k.kernelTimeMs, 0).toFixed(2),
    p2.kernels
      .filter((k) => k.kernelTimeMs > 0.3)
      .map((k) => `${k.name} ${JSON.stringify(k.inputShapes)} ${k.kernelTimeMs.toFixed(2)}`)
      .join(' | '),
  );
}
