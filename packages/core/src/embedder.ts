/** Turns texts into vectors. Implementations: @strata-cache/embed-use (local), provider embedders. */
export interface Embedder {
  /** Stable id including the model (and its version): part of every semantic partition. */
  readonly id: string;
  readonly dimensions: number;
  /** One vector per text, in order. Vectors should be L2-normalised (cosine = dot product). */
  embed(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
  close?(): Promise<void>;
}
