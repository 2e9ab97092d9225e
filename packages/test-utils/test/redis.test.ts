import { afterAll, describe, expect, it } from 'vitest';
import { freePort, rawRedisCommand, redisForTests, startRedisCluster, startRedisServer, type RedisServerHandle } from '../src/index.js';

describe('startRedisServer', () => {
  let server: RedisServerHandle | undefined;
  afterAll(async () => server?.stop());

  it('starts, pauses, resumes, restarts on the same port, kill9 and stops', async () => {
    server = await startRedisServer({ args: ['--maxmemory', '4mb'] });
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(await rawRedisCommand(server, ['SET', 'k', 'v'])).toBe('+OK\r\n');
    expect(await rawRedisCommand(server, ['CONFIG', 'GET', 'maxmemory'])).toContain('4194304');

    server.pause();
    await expect(rawRedisCommand(server, ['PING'], 300)).rejects.toThrow(/no reply/);
    server.resume();
    expect(await rawRedisCommand(server, ['PING'])).toBe('+PONG\r\n');

    const pid = server.pid;
    await server.kill9();
    await expect(rawRedisCommand(server, ['PING'], 300)).rejects.toThrow();
    await server.restart();
    expect(server.pid).not.toBe(pid);
    // A fresh, empty server (persistence is off).
    expect(await rawRedisCommand(server, ['GET', 'k'])).toBe('$-1\r\n');

    server.pause();
    await server.restart(); // restart works from a paused state too
    expect(await rawRedisCommand(server, ['PING'])).toBe('+PONG\r\n');

    await server.stop();
    await expect(rawRedisCommand(server, ['PING'], 300)).rejects.toThrow();
  });

  it('fails clearly when the port is taken', async () => {
    const port = await freePort();
    const a = await startRedisServer({ port });
    try {
      await expect(startRedisServer({ port, startTimeoutMs: 3_000 })).rejects.toThrow(/exited|did not answer/);
    } finally {
      await a.stop();
    }
  });
});

describe('redisForTests', () => {
  it('returns REDIS_URL or a private server, the same one per file', async () => {
    const a = await redisForTests();
    const b = await redisForTests();
    expect(a).toBe(b);
    if (process.env.REDIS_URL) expect(a.owned).toBe(false);
    else expect(a.owned).toBe(true);
  });
});

describe('startRedisCluster', () => {
  it('starts a 3-master cluster covering all slots', async () => {
    const cluster = await startRedisCluster(3);
    try {
      expect(cluster.nodes).toHaveLength(3);
      const info = await rawRedisCommand(cluster.nodes[0]!, ['CLUSTER', 'INFO']);
      expect(info).toContain('cluster_state:ok');
      expect(info).toContain('cluster_slots_assigned:16384');
      expect(info).toContain('cluster_known_nodes:3');
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

describe('startTcpProxy', () => {
  it('forwards, black-holes while paused, then delivers', async () => {
    const { startTcpProxy } = await import('../src/index.js');
    const server = await startRedisServer();
    const proxy = await startTcpProxy({ port: server.port });
    try {
      expect(await rawRedisCommand({ port: proxy.port }, ['PING'])).toBe('+PONG\r\n');
      proxy.pause();
      await expect(rawRedisCommand({ port: proxy.port }, ['PING'], 300)).rejects.toThrow(/no reply/);
      const late = rawRedisCommand({ port: proxy.port }, ['PING'], 3_000);
      await new Promise((r) => setTimeout(r, 100));
      proxy.resume();
      expect(await late).toBe('+PONG\r\n');
    } finally {
      await proxy.close();
      await server.stop();
    }
  });
});
