import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MissingDependencyError } from '@strata-cache/core';

/** TF.js backends this package can run the model on. */
export type UseBackend = 'wasm' | 'cpu';

export const DIMENSIONS = 512;
const PKG = '@strata-cache/embed-use';

/** Runs the USE-lite graph on batches of token ids, in the calling thread. */
export interface ModelRunner {
  /** The backend TF.js reports as running (`tf.getBackend()`), which may differ from the one asked for. */
  readonly backend: string;
  /** True when the wasm backend runs its SIMD build. */
  readonly simd: boolean;
  /** Row-major [rows × 512] float32, one row per token-id list, L2-normalised by the model. */
  run(batch: ReadonlyArray<ArrayLike<number>>): Promise<Float32Array>;
  dispose(): void;
}

type Tf = typeof import('@tensorflow/tfjs-core');
type Converter = typeof import('@tensorflow/tfjs-converter');

/**
 * Imports a peer from this package's location (pnpm's strict layout: core cannot resolve our
 * peers), never at module load, with an error that names what to install.
 */
export async function importPeer<T>(specifier: string, hint = ''): Promise<T> {
  try {
    return (await import(specifier)) as T;
  } catch (cause) {
    const reason = (cause as Error)?.message ?? String(cause);
    throw new MissingDependencyError(
      specifier,
      `${PKG} needs "${specifier}", which could not be loaded (${reason}). Install it: pnpm add ${specifier}${hint ? `. ${hint}` : ''}`,
      { cause },
    );
  }
}

const TF_PEERS = 'The TF.js packages must share one version: @tensorflow/tfjs-core, @tensorflow/tfjs-converter and @tensorflow/tfjs-backend-wasm (or -cpu)';

export async function loadRunner(modelDir: string, wanted: UseBackend): Promise<ModelRunner> {
  const tf = await importPeer<Tf>('@tensorflow/tfjs-core', TF_PEERS);
  const converter = await importPeer<Converter>('@tensorflow/tfjs-converter', TF_PEERS);
  // Production mode: no debug checks, and no "install tfjs-node" banner on stderr.
  tf.env().set('PROD', true);
  if (wanted === 'wasm') {
    // Threaded wasm cannot start in Node (its workers come from blob: URLs) and TF.js would then
    // fall back to cpu without a word: ask for the single-threaded SIMD build instead and use
    // one model per worker_thread for parallelism.
    await importPeer('@tensorflow/tfjs-backend-wasm', TF_PEERS);
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  } else {
    await importPeer('@tensorflow/tfjs-backend-cpu', TF_PEERS);
  }
  try {
    await tf.setBackend(wanted);
  } catch {
    // reported below through getBackend()
  }
  await tf.ready();
  const backend = tf.getBackend();
  const simd = backend === 'wasm' ? Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) : false;
  const model = await loadGraph(tf, converter, modelDir);

  return {
    backend,
    simd,
    async run(batch) {
      let total = 0;
      for (const ids of batch) total += ids.length;
      const indices = new Int32Array(total * 2);
      const values = new Int32Array(total);
      let k = 0;
      for (let row = 0; row < batch.length; row++) {
        const ids = batch[row]!;
        for (let col = 0; col < ids.length; col++) {
          indices[2 * k] = row;
          indices[2 * k + 1] = col;
          values[k] = ids[col]!;
          k++;
        }
      }
      const tIndices = tf.tensor2d(indices, [total, 2], 'int32');
      const tValues = tf.tensor1d(values, 'int32');
      try {
        const out = (await model.executeAsync({ indices: tIndices, values: tValues })) as import('@tensorflow/tfjs-core').Tensor;
        try {
          // A fresh copy: backends may hand out views of their own memory, and callers transfer the buffer.
          const data = new Float32Array((await out.data()) as Float32Array);
          // USE-lite already ends in l2_normalize; re-normalise anyway so a user-supplied model
          // directory with another head still yields unit vectors (cosine = dot product).
          for (let off = 0; off < data.length; off += DIMENSIONS) {
            let n = 0;
            for (let j = off; j < off + DIMENSIONS; j++) n += data[j]! * data[j]!;
            if (n > 0 && Math.abs(n - 1) > 1e-6) {
              const inv = 1 / Math.sqrt(n);
              for (let j = off; j < off + DIMENSIONS; j++) data[j]! *= inv;
            }
          }
          return data;
        } finally {
          out.dispose();
        }
      } finally {
        tIndices.dispose();
        tValues.dispose();
      }
    },
    dispose() {
      model.dispose();
    },
  };
}

/** Loads `model.json` + its weight shards from a directory (no fetch, no network). */
async function loadGraph(tf: Tf, converter: Converter, dir: string) {
  const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as {
    modelTopology: object;
    weightsManifest: Array<{ paths: string[]; weights: import('@tensorflow/tfjs-core').io.WeightsManifestEntry[] }>;
    format?: string;
    generatedBy?: string;
    convertedBy?: string | null;
    signature?: object;
    userDefinedMetadata?: { [key: string]: {} };
    modelInitializer?: object;
  };
  const weightSpecs: import('@tensorflow/tfjs-core').io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) buffers.push(await readFile(join(dir, p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler: import('@tensorflow/tfjs-core').io.IOHandler = {
    load: async () => ({
      modelTopology: modelJson.modelTopology,
      weightSpecs,
      weightData,
      ...(modelJson.format ? { format: modelJson.format } : {}),
      ...(modelJson.generatedBy ? { generatedBy: modelJson.generatedBy } : {}),
      ...(modelJson.signature ? { signature: modelJson.signature } : {}),
      ...(modelJson.userDefinedMetadata ? { userDefinedMetadata: modelJson.userDefinedMetadata } : {}),
      ...(modelJson.modelInitializer ? { modelInitializer: modelJson.modelInitializer } : {}),
    }),
  };
  void tf;
  return converter.loadGraphModel(handler);
}
