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
  /**
   * Tokens per text the graph itself keeps (USE-lite's `ClipToMaxLength` drops every token from
   * position 128 on); `undefined` when the graph has no such clip.
   */
  readonly maxSequenceLength: number | undefined;
  /** Versions of the TF.js packages loaded (a mismatch is a classic cause of a silent backend fallback). */
  readonly versions: { core: string; converter: string; backend: string };
  /** True when the graph runs through the synchronous executor (no dynamic op left). */
  readonly sync: boolean;
  /** Row-major [rows × 512] float32, one row per token-id list, L2-normalised by the model. */
  run(batch: ReadonlyArray<ArrayLike<number>>): Promise<Float32Array>;
  dispose(): void;
}

type Tf = typeof import('@tensorflow/tfjs-core');
type Converter = typeof import('@tensorflow/tfjs-converter');
type Tensor = import('@tensorflow/tfjs-core').Tensor;
type GraphModel = import('@tensorflow/tfjs-converter').GraphModel;

/** Custom op name the graph's `Where` nodes are renamed to (see registerSyncWhere). */
const SYNC_WHERE = 'StrataEmbedUseSyncWhere';
const CLIP_LENGTH_WEIGHT = 'module_apply_default/Encoder_en/KonaTransformer/ClipToMaxLength/Less/y';

/**
 * `Where` (coordinates of the true elements) is the one reason USE-lite needs TF.js's async
 * executor: its output shape depends on the data, so TF.js only offers `whereAsync`. On the
 * wasm and cpu backends the data already sits in CPU memory, so reading it synchronously costs
 * nothing. The result is identical (int32 [count, rank], row-major order); checked by the tests.
 */
function registerSyncWhere(tf: Tf, converter: Converter): void {
  // Registering again (another model in this thread) just replaces the same function.
  converter.registerOp(SYNC_WHERE, (node) => {
    const condition = node.inputs[0]!;
    const shape = condition.shape;
    const rank = shape.length;
    const data = condition.dataSync();
    let count = 0;
    for (let i = 0; i < data.length; i++) if (data[i]) count++;
    const coords = new Int32Array(count * rank);
    const strides = new Array<number>(rank);
    for (let d = rank - 1, s = 1; d >= 0; d--) {
      strides[d] = s;
      s *= shape[d]!;
    }
    let k = 0;
    for (let i = 0; i < data.length; i++) {
      if (!data[i]) continue;
      let r = i;
      for (let d = 0; d < rank; d++) {
        coords[k++] = Math.floor(r / strides[d]!);
        r %= strides[d]!;
      }
    }
    return tf.tensor2d(coords, [count, rank], 'int32');
  });
}

/** The graph's own token limit (USE-lite: 128), read from its weights. */
function readClipLength(model: GraphModel): number | undefined {
  const t = model.weights[CLIP_LENGTH_WEIGHT]?.[0];
  if (t?.size !== 1) return undefined;
  return Number(t.dataSync()[0]);
}

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

/** @param syncWhere `false` keeps the graph's own async `Where` (tests compare both). */
export async function loadRunner(modelDir: string, wanted: UseBackend, { syncWhere = true }: { syncWhere?: boolean } = {}): Promise<ModelRunner> {
  const tf = await importPeer<Tf>('@tensorflow/tfjs-core', TF_PEERS);
  const converter = await importPeer<Converter>('@tensorflow/tfjs-converter', TF_PEERS);
  // Production mode: no debug checks, and no "install tfjs-node" banner on stderr.
  tf.env().set('PROD', true);
  let backendVersion: string;
  if (wanted === 'wasm') {
    // Threaded wasm cannot start in Node (its workers come from blob: URLs) and TF.js would then
    // fall back to cpu without a word: ask for the single-threaded SIMD build instead and use
    // one model per worker_thread for parallelism.
    backendVersion = (await importPeer<{ version_wasm: string }>('@tensorflow/tfjs-backend-wasm', TF_PEERS)).version_wasm;
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  } else {
    backendVersion = (await importPeer<{ version_cpu: string }>('@tensorflow/tfjs-backend-cpu', TF_PEERS)).version_cpu;
  }
  try {
    await tf.setBackend(wanted);
  } catch {
    // reported below through getBackend()
  }
  await tf.ready();
  const backend = tf.getBackend();
  const simd = backend === 'wasm' ? Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) : false;
  registerSyncWhere(tf, converter);
  const model = await loadGraph(converter, modelDir, syncWhere);
  const maxSequenceLength = readClipLength(model);

  const inputs = (batch: ReadonlyArray<ArrayLike<number>>) => {
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
    return { indices: tf.tensor2d(indices, [total, 2], 'int32'), values: tf.tensor1d(values, 'int32') };
  };
  // With `Where` made synchronous USE-lite has no dynamic op left, and `execute()` (a cached,
  // topologically sorted node list) costs 15–30 % less per call than `executeAsync()`. A
  // user-supplied graph that still has control flow keeps the async executor.
  let sync = true;
  const execute = async (batch: ReadonlyArray<ArrayLike<number>>): Promise<Tensor> => {
    const input = inputs(batch);
    try {
      if (sync) {
        try {
          return model.execute(input) as Tensor;
        } catch (e) {
          if (!/dynamic op|control flow/i.test((e as Error)?.message ?? '')) throw e;
          sync = false;
        }
      }
      return (await model.executeAsync(input)) as Tensor;
    } finally {
      tf.dispose([input.indices, input.values]);
    }
  };
  // Warm-up: the first call packs every weight matrix for XNNPACK (tens of ms); do it before
  // the instance reports ready, so the first real query does not pay for it.
  tf.dispose(await execute([[0, 1]]));

  return {
    backend,
    simd,
    maxSequenceLength,
    versions: { core: tf.version_core, converter: converter.version_converter, backend: backendVersion },
    get sync() {
      return sync;
    },
    async run(batch) {
      const out = await execute(batch);
      try {
        // A fresh copy: backends may hand out views of their own memory, and callers transfer the buffer.
        const data = new Float32Array(out.dataSync() as Float32Array);
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
    },
    dispose() {
      model.dispose();
    },
  };
}

/** Loads `model.json` + its weight shards from a directory (no fetch, no network). */
async function loadGraph(converter: Converter, dir: string, syncWhere: boolean) {
  const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as {
    modelTopology: object;
    weightsManifest: Array<{ paths: string[]; weights: import('@tensorflow/tfjs-core').io.WeightsManifestEntry[] }>;
    format?: string;
    generatedBy?: string;
    convertedBy?: string | null;
    signature?: object;
    // biome-ignore lint/complexity/noBannedTypes: mirrors the model loader's own ModelArtifacts type
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
  // Single-input `Where` nodes run as the synchronous custom op registered above.
  const topology = modelJson.modelTopology as { node?: Array<{ op: string; input?: string[] }> };
  for (const node of syncWhere ? (topology.node ?? []) : []) {
    if (node.op === 'Where' && (node.input ?? []).filter((i) => !i.startsWith('^')).length === 1) node.op = SYNC_WHERE;
  }
  const handler: import('@tensorflow/tfjs-core').io.IOHandler = {
    load: async () => ({
      modelTopology: topology,
      weightSpecs,
      weightData,
      ...(modelJson.format ? { format: modelJson.format } : {}),
      ...(modelJson.generatedBy ? { generatedBy: modelJson.generatedBy } : {}),
      ...(modelJson.signature ? { signature: modelJson.signature } : {}),
      ...(modelJson.userDefinedMetadata ? { userDefinedMetadata: modelJson.userDefinedMetadata } : {}),
      ...(modelJson.modelInitializer ? { modelInitializer: modelJson.modelInitializer } : {}),
    }),
  };
  return converter.loadGraphModel(handler);
}
