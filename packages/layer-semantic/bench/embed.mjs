// Embedder speed: one text at a time (latency) and many concurrent single-text calls (throughput),
// for short questions and for chat-length turns, current embed-use beside the "before" build.
import { cpuPressure10s, loadAvg, log, pct, round, round1 } from './lib.mjs';

/**
 * Latency (one text at a time, each awaited) and throughput (rounds of `throughput` concurrent
 * embed([text]) calls; median of 3 rounds) of one embedder configuration on `texts`.
 */
export async function benchEmbedder(createUseEmbedder, label, options, texts, { singles, throughput, rounds = 3 }) {
  const load1 = loadAvg()[0];
  const pressureBefore = cpuPressure10s();
  const t0 = performance.now();
  const e = await createUseEmbedder(options);
  const loadMs = performance.now() - t0;
  await e.embed(texts.slice(0, 4)); // warm-up
  const lat = [];
  for (let i = 0; i < singles; i++) {
    const s = performance.now();
    await e.embed([`${texts[(i * 7) % texts.length]} ${i}`]);
    lat.push(performance.now() - s);
  }
  const perRound = [];
  const cpu0 = process.cpuUsage(); // all threads of this process: main + workers
  for (let r = 0; r < rounds; r++) {
    const qs = Array.from({ length: throughput }, (_, i) => `${texts[i % texts.length]} #${r}-${i}`);
    const s = performance.now();
    await Promise.all(qs.map((q) => e.embed([q])));
    perRound.push(round1(throughput / ((performance.now() - s) / 1000)));
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerText = round((cpu.user + cpu.system) / 1000 / (rounds * throughput), 2);
  const tps = pct(perRound, 50);
  const info = e.info;
  await e.close();
  const r = {
    label,
    backend: info.backend,
    simd: info.simd,
    workers: info.workers,
    executor: info.executor,
    loadavg1mAtStart: load1,
    loadMs: Math.round(loadMs),
    singleP50Ms: round(pct(lat, 50), 2),
    singleP99Ms: round(pct(lat, 99), 2),
    singles,
    textsPerSecond: round1(tps),
    textsPerSecondRounds: perRound,
    cpuMsPerTextConcurrent: cpuMsPerText,
    coresUsedConcurrent: round((cpuMsPerText * tps) / 1000, 2),
    cpuPressureSomeAvg10: { beforeRun: pressureBefore, afterThroughput: cpuPressure10s() },
    concurrentCallsPerRound: throughput,
  };
  log(label, r);
  return r;
}

/** Mean SentencePiece tokens of `texts` (as embed-use truncates them). */
export async function meanTokens(createUseEmbedder, texts) {
  const e = await createUseEmbedder({ workers: 0 });
  const n = texts.reduce((s, t) => s + e.tokenize(t).length, 0) / texts.length;
  await e.close();
  return round1(n);
}
