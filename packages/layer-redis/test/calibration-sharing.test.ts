import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RedisServerHandle, type TaggedChild, spawnTaggedChild, startRedisServer, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const script = join(here, 'fixtures', 'calibration-process.mjs');
const pkg = join(here, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: RedisServerHandle;
beforeAll(async () => {
  server = await startRedisServer();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

async function stop(c: TaggedChild): Promise<void> {
  c.proc.stdin!.end();
  await c.exited;
}

describe('calibration shared across processes (two processes, a redis-server of their own)', () => {
  it("one process's judged evidence reaches another over the Redis layer's pub/sub: same boundaries, none judged there", async () => {
    const prefix = uniqueKeyPrefix('calibration');
    const learner = spawnTaggedChild(script, ['learn', server.url, prefix, '0'], { cwd: pkg });
    await learner.waitFor('READY');
    const teacher = spawnTaggedChild(script, ['teach', server.url, prefix, '300'], { cwd: pkg });
    const [taught] = await teacher.waitFor('TAUGHT', 1, 60_000);
    const t = taught!.data as { nearMissesJudged: number; boundariesLearned: number; shared: { published: number; applied: number } };
    expect(t.nearMissesJudged).toBeGreaterThan(50);
    expect(t.shared.published).toBeGreaterThan(0);
    expect(t.shared.applied).toBe(0); // its own messages are skipped
    // The learner, listening all along, holds the teacher's evidence (the last message sent
    // within the teacher's publish interval: give it a moment to arrive)…
    await sleep(500);
    learner.proc.stdin!.write('report\n');
    const [learned] = await learner.waitFor('LEARNED', 1, 30_000);
    const l = learned!.data as typeof t;
    expect(l.nearMissesJudged).toBe(0);
    expect(l.shared.applied).toBeGreaterThan(0);
    expect(l.boundariesLearned).toBe(t.boundariesLearned);
    // …while one started after it was sent learns nothing (delivery is live, not replayed: a
    // process that starts later has its own snapshot, and learns from the traffic from then on).
    const late = spawnTaggedChild(script, ['learn', server.url, prefix, '0'], { cwd: pkg });
    await late.waitFor('READY');
    await sleep(500);
    late.proc.stdin!.write('report\n');
    const [lateLearned] = await late.waitFor('LEARNED', 1, 30_000);
    expect((lateLearned!.data as typeof t).boundariesLearned).toBe(0);
    await Promise.all([stop(teacher), stop(learner), stop(late)]);
  }, 120_000);
});
