import { type Embedder, InvalidOptionError } from '@strata-cache/core';
import { type ClientOptions, OpenAI } from 'openai';

const PKG = '@strata-cache/openai';

/** Native sizes of OpenAI's embedding models. */
const NATIVE_DIMENSIONS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

export interface OpenAIEmbedderOptions {
  /** Client to call (a cached client from `withCache` works too). @default new OpenAI(clientOptions) */
  client?: OpenAI | undefined;
  /** Options for a new client, e.g. `{ baseURL: 'http://localhost:11434/v1', apiKey: 'ollama' }` for an OpenAI-compatible server. @default {} */
  clientOptions?: ClientOptions | undefined;
  /** Embedding model. @default 'text-embedding-3-small' */
  model?: string | undefined;
  /**
   * Vector size. For text-embedding-3 models it is sent as the `dimensions` request field
   * (shortened embeddings); for other models it must equal the model's native size and is
   * required when the model is not an OpenAI one. @default the model's native size
   */
  dimensions?: number | undefined;
  /** Texts per request. @default 256 */
  batchSize?: number | undefined;
  /** Embedder id (part of every semantic partition). @default `openai:<host>:<model>:<dimensions>` */
  id?: string | undefined;
}

/**
 * An `Embedder` for the semantic layer backed by OpenAI embeddings (or any server that speaks
 * the OpenAI embeddings API). Vectors are L2-normalised.
 */
export class OpenAIEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  readonly model: string;
  private readonly client: OpenAI;
  private readonly sendDimensions: boolean;
  private readonly batchSize: number;

  constructor(options: OpenAIEmbedderOptions = {}) {
    const known = ['client', 'clientOptions', 'model', 'dimensions', 'batchSize', 'id'];
    for (const k of Object.keys(options)) {
      if (!known.includes(k)) throw new InvalidOptionError(`${PKG}: unknown OpenAIEmbedder option "${k}"`, { field: k });
    }
    if (options.client && options.clientOptions)
      throw new InvalidOptionError(`${PKG}: pass either "client" or "clientOptions" to OpenAIEmbedder, not both`, { field: 'clientOptions' });
    this.model = options.model ?? 'text-embedding-3-small';
    if (typeof this.model !== 'string' || this.model === '')
      throw new InvalidOptionError(`${PKG}: OpenAIEmbedder option "model" must be a model name`, { field: 'model' });
    const native = NATIVE_DIMENSIONS[this.model];
    const dims = options.dimensions ?? native;
    if (dims === undefined) {
      throw new InvalidOptionError(`${PKG}: OpenAIEmbedder needs option "dimensions" for model "${this.model}" (its vector size is not known)`, {
        field: 'dimensions',
      });
    }
    if (!Number.isSafeInteger(dims) || dims < 1)
      throw new InvalidOptionError(`${PKG}: OpenAIEmbedder option "dimensions" must be a positive integer`, { field: 'dimensions' });
    this.dimensions = dims;
    this.sendDimensions = options.dimensions !== undefined && this.model.startsWith('text-embedding-3');
    this.batchSize = options.batchSize ?? 256;
    if (!Number.isSafeInteger(this.batchSize) || this.batchSize < 1)
      throw new InvalidOptionError(`${PKG}: OpenAIEmbedder option "batchSize" must be a positive integer`, { field: 'batchSize' });
    this.client = options.client ?? new OpenAI(options.clientOptions);
    let host = 'api.openai.com';
    try {
      host = new URL(this.client.baseURL).host;
    } catch {
      /* keep the default */
    }
    this.id = options.id ?? `openai:${host}:${this.model}:${this.dimensions}`;
  }

  async embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) {
      const batch = texts.slice(i, i + this.batchSize);
      const res = await this.client.embeddings.create(
        { model: this.model, input: batch as string[], ...(this.sendDimensions ? { dimensions: this.dimensions } : {}) },
        options.signal ? { signal: options.signal } : undefined,
      );
      const rows = [...res.data].sort((a, b) => a.index - b.index);
      if (rows.length !== batch.length) throw new Error(`${PKG}: the embeddings endpoint returned ${rows.length} vectors for ${batch.length} texts`);
      for (const row of rows) {
        const v = Float32Array.from(row.embedding as number[]);
        if (v.length !== this.dimensions) {
          throw new InvalidOptionError(
            `${PKG}: model "${this.model}" returned ${v.length}-dimensional vectors, OpenAIEmbedder expects ${this.dimensions} (option "dimensions")`,
            { field: 'dimensions' },
          );
        }
        out.push(normalise(v));
      }
    }
    return out;
  }
}

function normalise(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s);
  if (n > 0 && Math.abs(n - 1) > 1e-6) for (let i = 0; i < v.length; i++) v[i] = v[i]! / n;
  return v;
}
