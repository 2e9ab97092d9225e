// One process of the gateway benchmark: the upstream (a local OpenAI wire-format server) or the
// gateway itself (with a bare echo route on the same server, the baseline of the hit figure, and a
// bare proxy route, the floor of the miss figure).
// Prints `READY <json>` when listening.
import { startOpenAIServer } from '@strata-cache/provider-test-servers';
import { startGateway } from '@strata-cache/gateway';
import { Pool } from 'undici';

const role = process.argv[2];
if (role === 'upstream') {
  const server = await startOpenAIServer();
  console.log('READY ' + JSON.stringify({ baseURL: server.baseURL }));
} else if (role === 'gateway') {
  const config = JSON.parse(process.env.BENCH_GATEWAY_CONFIG);
  const gateway = await startGateway({
    config,
    env: { UPSTREAM_KEY: process.env.UPSTREAM_KEY },
    // The baseline: a route on the same Fastify server, through the same JSON parser and hooks,
    // that answers with the request body — everything but authentication and the cache.
    extend(app) {
      app.post('/bench/echo', async (req, reply) => {
        reply.header('content-type', 'application/json');
        return req.body.text;
      });
      // The floor of any proxy: the body sent on to the upstream over undici as received, its
      // answer relayed — no authentication, no key, no cache, no headers but the content type.
      const upstream = new URL(config.upstreams.openai.baseUrl);
      const pool = new Pool(upstream.origin, { connections: 4 });
      const path = upstream.pathname.replace(/\/+$/, '') + '/chat/completions';
      app.post('/bench/proxy', async (req, reply) => {
        const res = await pool.request({
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.UPSTREAM_KEY}` },
          body: req.body.text,
        });
        const text = await res.body.text();
        reply.code(res.statusCode).header('content-type', 'application/json');
        return text;
      });
    },
  });
  console.log('READY ' + JSON.stringify({ url: gateway.url }));
  process.on('SIGTERM', () => gateway.close().then(() => process.exit(0)));
} else {
  throw new Error(`unknown role ${role}`);
}
