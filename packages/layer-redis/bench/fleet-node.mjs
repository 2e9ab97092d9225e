// One process of the semantic-fleet benchmark (bench/semantic-fleet.bench.mjs), forked with an
// IPC channel. Roles:
//   writer    SemanticLayer (+ RedisSemanticFeed unless replication is off) writing entries
//   follower  SemanticLayer + RedisSemanticFeed, timing when each replicated put is applied
//   bare      the transport floor: raw XADD of same-size payloads / XREAD BLOCK, no layer
import { performance } from 'node:perf_hooks';
import { computeKey, computeSemantic, resolveScope } from '@strata-cache/core';
import { SemanticLayer } from '@strata-cache/layer-semantic';
import { Redis } from 'ioredis';
import { RedisLayer } from '../dist/index.js';
import { RedisSemanticFeed } from '../dist/semantic-feed.js';
import { WordEmbedder } from '../test/fixtures/word-embedder.mjs';

const [role, url, prefix, dimsText, replicationText] = process.argv.slice(2);
const DIMS = Number(dimsText);
const now = () => performance.timeOrigin + performance.now();
const send = (m) => process.send(m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ANSWER = 'To reset your password, open Settings, choose Security, then Reset password. '.repeat(8);

function item(i, phase, tenants, group) {
  const scope = resolveScope(`${group}-tenant-${i % tenants}`);
  const text = `question ${phase} ${i}: how do I configure feature ${i % 97} for team ${Math.floor(i / 97)} with option ${i % 13}?`;
  const req = {
    model: 'gpt-4o-mini',
    temperature: 0,
    messages: [
      { role: 'system', content: 'You are the support assistant.' },
      { role: 'user', content: text },
    ],
  };
  return {
    key: computeKey(req, scope),
    entry: { value: { t: 0, answer: ANSWER }, createdAt: Date.now(), tags: [], ttlMs: 3_600_000, semantic: computeSemantic(req, scope) },
  };
}

function cpuMs(start) {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1_000;
}

function memory(collect = true) {
  if (collect) globalThis.gc?.();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers };
}

if (role === 'bare') {
  // Transport floor: one connection appends, another blocks on XREAD, same payload sizes.
  const key = `${prefix}:bare`;
  const reader = new Redis(url);
  const writer = new Redis(url);
  const lags = [];
  let reading = true;
  let last = '$';
  const readLoop = (async () => {
    while (reading) {
      const r = await reader.xreadBuffer('COUNT', 512, 'BLOCK', 200, 'STREAMS', key, last);
      const t = now();
      if (!r) continue;
      for (const [id, fields] of r[0][1]) {
        last = id.toString();
        lags.push(t - Number(fields[1].toString()));
      }
    }
  })();
  process.on('message', async (m) => {
    if (m.type !== 'run') return;
    const payload = Buffer.alloc(m.bytes, 7);
    const t0 = now();
    for (let i = 0; i < m.count; i++) {
      const due = t0 + (i * 1_000) / m.rate;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
      writer.xadd(key, 'MAXLEN', '~', '10000', '*', 't', String(now()), 'm', payload);
    }
    await sleep(500);
    reading = false;
    await readLoop;
    send({ type: 'done', lags });
    reader.disconnect();
    writer.disconnect();
    process.exit(0);
  });
  send({ type: 'ready' });
} else {
  const replication = replicationText !== 'off';
  const redis = new RedisLayer({ url, prefix });
  const embedder = new WordEmbedder(DIMS);
  const lags = [];
  let phase = 'idle';
  let applied = 0;
  let feed;
  let timed;
  if (replication) {
    feed = new RedisSemanticFeed({ layer: redis, ...(process.env.BENCH_BATCH_MS ? { batchMs: Number(process.env.BENCH_BATCH_MS) } : {}) });
    // Times each replicated put when the layer's apply returned (it is in the index then).
    timed = {
      publish: (o, m) => feed.publish(o, m),
      flush: (ms) => feed.flush(ms),
      subscribe: (from, sink) =>
        feed.subscribe(from, {
          apply(records) {
            sink.apply(records);
            const t = now();
            for (const r of records) {
              // (Its own records come back to the writer; like the layer, skip them unread.)
              if (r.origin === semantic.replicaId || r.mutation.type !== 'put') continue;
              applied++;
              const sent = r.mutation.entry?.value?.t;
              // ms: from the writer's set() call (its embedding included); pub: from its publish
              // (mutation.at, the writer's Date.now() once the entry was embedded and indexed there).
              if (sent && phase !== 'idle') lags.push({ phase, ms: t - sent, pub: t - r.mutation.at, at: sent });
            }
          },
          gap: (x) => sink.gap(x),
        }),
    };
  }
  const semantic = new SemanticLayer({
    embedder,
    threshold: 0.9,
    guards: [],
    selector: false,
    maxEntries: 200_000,
    ...(timed ? { replication: { feed: timed } } : {}),
  });
  await semantic.ready();
  const base = { mem: memory(), cpu: process.cpuUsage() };

  process.on('message', async (m) => {
    if (m.type === 'phase') {
      phase = m.phase;
      base.cpu = process.cpuUsage();
      base.applied = applied;
      send({ type: 'ack' });
    } else if (m.type === 'write') {
      // Paced (rate) or as fast as the layer takes them (rate 0); each value carries its send time.
      // The requests (keys, semantic splits) are built first: building them inside the paced
      // window put the schedule hundreds of writes behind at its start, which then went out as
      // one burst — and their cost is the application's, not the layer's.
      const items = Array.from({ length: m.count }, (_, i) => item(m.offset + i, m.phase, m.tenants, m.group ?? m.phase));
      const t0 = now();
      const c0 = process.cpuUsage();
      const pending = [];
      for (let i = 0; i < m.count; i++) {
        if (m.rate > 0) {
          const wait = t0 + (i * 1_000) / m.rate - now();
          if (wait > 1) await sleep(wait);
        } else if (i % 64 === 0) await new Promise((r) => setImmediate(r));
        const it = items[i];
        it.entry.value.t = now();
        it.entry.createdAt = Date.now();
        pending.push(semantic.set(it.key, it.entry));
      }
      await Promise.all(pending);
      const wroteMs = now() - t0;
      if (feed) await feed.flush(60_000);
      const sentMs = now() - t0;
      send({ type: 'written', count: m.count, wroteMs, sentMs, cpuMs: cpuMs(c0), feed: feed?.stats() });
    } else if (m.type === 'report') {
      const entries = semantic.size;
      send({
        type: 'report',
        pid: process.pid,
        lags,
        applied: applied - (base.applied ?? 0),
        cpuMs: cpuMs(base.cpu),
        entries,
        // (A forced collection only when asked: a follower polled while it catches up is not slowed by one every poll.)
        mem: memory(m.memory === true),
        base: base.mem,
        stats: semantic.stats(),
        feed: feed?.stats(),
      });
      lags.length = 0;
    } else if (m.type === 'close') {
      await semantic.close();
      await redis.close();
      process.exit(0);
    }
  });
  send({ type: 'ready' });
}
