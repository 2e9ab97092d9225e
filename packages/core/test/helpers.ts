import { type CacheEntry, type CacheKey, LAYER_SPECIFICATION_VERSION, type LayerCapabilities, type LayerV1, type Scope, scopeBaseId } from '../src/index.js';

/** A minimal async in-memory layer with switchable faults, for exercising core's orchestration. */
export class TestLayer implements LayerV1 {
  readonly specificationVersion = LAYER_SPECIFICATION_VERSION;
  readonly capabilities: LayerCapabilities;
  readonly map = new Map<string, { key: CacheKey; entry: CacheEntry }>();
  mode: 'ok' | 'throw' | 'reject' | 'hang' | 'slow' = 'ok';
  slowMs = 0;
  gets = 0;
  sets = 0;
  constructor(
    readonly name: string,
    caps: Partial<LayerCapabilities> = {},
  ) {
    this.capabilities = { nativeTtl: false, batch: false, semantic: false, shared: false, tags: true, remote: true, ...caps };
  }
  private async fault(): Promise<void> {
    if (this.mode === 'throw') throw new Error(`${this.name} exploded`);
    if (this.mode === 'reject') return Promise.reject(new Error(`${this.name} rejected`));
    if (this.mode === 'hang') return new Promise(() => {});
    if (this.mode === 'slow') await new Promise((r) => setTimeout(r, this.slowMs));
  }
  get(key: CacheKey): Promise<CacheEntry | undefined> {
    this.gets++;
    if (this.mode === 'throw') throw new Error(`${this.name} exploded synchronously`);
    return this.fault().then(() => this.map.get(key.id)?.entry);
  }
  async set(key: CacheKey, entry: CacheEntry): Promise<void> {
    this.sets++;
    await this.fault();
    this.map.set(key.id, { key, entry: JSON.parse(JSON.stringify(entry)) });
  }
  async delete(key: CacheKey): Promise<boolean> {
    await this.fault();
    return this.map.delete(key.id);
  }
  async clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    await this.fault();
    let n = 0;
    for (const [id, r] of this.map) if ((!scope || scopeBaseId(r.key.scope) === scopeBaseId(scope)) && this.map.delete(id)) n++;
    return n;
  }
  async deleteByTag(tag: string): Promise<number> {
    await this.fault();
    let n = 0;
    for (const [id, r] of this.map) if (r.entry.tags.includes(tag) && this.map.delete(id)) n++;
    return n;
  }
}
