// One worker process of `pnpm demo -- --workers N`: its own stack (L1, L2 on the shared Redis,
// L3 following the fleet through the semantic feed), serving the chat calls the parent routes
// to it over the IPC channel. Started by fleet.ts; not a command of its own.
import { buildStack, type Stack, type StackOptions } from './stack.js';
import type { ChatCall } from './client.js';
import type { ToWorker, FromWorker } from './fleet.js';

const send = (m: FromWorker) => process.send!(m);
let stack: Stack | undefined;

process.on('message', (raw) => {
  void handle(raw as ToWorker).catch((error: unknown) => {
    process.stderr.write(`demo worker ${process.pid}: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(2);
  });
});
// The parent went away: nothing left to serve.
process.on('disconnect', () => process.exit(0));

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'init': {
      const options: StackOptions = { ...m.options, log: (line) => process.stderr.write(`[worker ${m.index}] ${line}\n`) };
      stack = await buildStack(options);
      for (const cache of stack.caches) {
        // Tell the parent when another process's invalidation reached this one (the event's fan-out time).
        cache.on('invalidate', (e) => {
          if (e.origin === 'remote' && e.message.type === 'tag') send({ type: 'invalidated', layers: { ...e.layers } });
        });
      }
      send({ type: 'ready', components: stack.components, missing: stack.missing, prices: stack.prices, client: stack.client.description });
      return;
    }
    case 'chat': {
      try {
        const outcome = await stack!.client.chat(m.call as ChatCall);
        send({ type: 'chat', id: m.id, outcome });
      } catch (error) {
        send({ type: 'chat', id: m.id, error: (error as Error)?.message ?? String(error) });
      }
      return;
    }
    case 'event': {
      const r = await stack!.pricingChanged(m.tenant);
      send({ type: 'event', id: m.id, purged: r.purged, detail: r.detail });
      return;
    }
    case 'flush':
      await stack!.flush();
      send({ type: 'flushed' });
      return;
    case 'stats':
      send({
        type: 'stats',
        stats: stack!.stats(),
        semantic: stack!.semanticLayers.map((l) => {
          const s = l.stats();
          return {
            entries: s.entries,
            indexed: s.indexed,
            embeddings: s.embeddings,
            replication: s.replication ? { applied: s.replication.applied, resyncs: s.replication.resyncs, lagMs: s.replication.lagMs } : undefined,
            calibration: s.calibration,
          };
        }),
      });
      return;
    case 'close':
      await stack!.close();
      send({ type: 'closed' });
      process.exit(0);
  }
}
