import { parentPort, workerData } from 'node:worker_threads';
import { type UseBackend, loadRunner } from './runner.js';

/** One model per worker thread: the wasm backend is single-threaded in Node, so threads = cores. */
interface Init {
  modelDir: string;
  backend: UseBackend;
}
interface Job {
  id: number;
  batch: number[][];
}

const port = parentPort;
if (!port) throw new Error('@strata-cache/embed-use: worker.js must run in a worker thread');
const init = workerData as Init;

loadRunner(init.modelDir, init.backend).then(
  (runner) => {
    port.postMessage({
      type: 'ready',
      backend: runner.backend,
      simd: runner.simd,
      sync: runner.sync,
      maxSequenceLength: runner.maxSequenceLength,
      versions: runner.versions,
    });
    let queue = Promise.resolve();
    port.on('message', (job: Job) => {
      queue = queue.then(async () => {
        try {
          const vectors = await runner.run(job.batch);
          port.postMessage({ type: 'result', id: job.id, vectors }, [vectors.buffer as ArrayBuffer]);
        } catch (e) {
          port.postMessage({ type: 'error', id: job.id, message: (e as Error)?.message ?? String(e) });
        }
      });
    });
  },
  (e: unknown) => {
    const err = e as Error & { code?: string; dependency?: string };
    port.postMessage({ type: 'failed', message: err?.message ?? String(e), code: err?.code, dependency: err?.dependency });
  },
);
