/** Turns texts into vectors. Implementations: @strata-cache/embed-use (local), provider embedders. */
export interface Embedder {
  /** Stable id including the model (and its version): part of every semantic partition. */
  readonly id: string;
  readonly dimensions: number;
  /** One vector per text, in order. Vectors should be L2-normalised (cosine = dot product). */
  embed(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
  /**
   * Whether the model can represent `text` faithfully (optional; absent = every text). A model
   * whose vocabulary misses part of a text (a script it never learned) maps texts that differ only
   * there to the same vector: the semantic layer serves a text this returns false for by exact key
   * only, never by similarity. Synchronous and cheap: it runs on every semantic lookup and write.
   */
  represents?(text: string): boolean;
  close?(): Promise<void>;
}
