/** A loader held until the test lets it answer: `release()` resolves it with `answer`, `fail()` rejects it. */
export interface GatedLoader<T> {
  /** The loader to hand to the cache; counts its calls. */
  readonly loader: () => Promise<T>;
  readonly release: () => void;
  readonly fail: (error?: Error) => void;
  /** How many times `loader` was called. */
  readonly calls: number;
}

/** A loader that answers `answer` once `release()` is called (every call waits for the same gate). */
export function gatedLoader<T>(answer: T | (() => T)): GatedLoader<T> {
  let release!: () => void;
  let fail!: (error?: Error) => void;
  const gate = new Promise<void>((resolve, reject) => {
    release = resolve;
    fail = (error = new Error('upstream down')) => reject(error);
  });
  gate.catch(() => undefined); // a gate failed before any call must not surface as unhandled
  let calls = 0;
  return {
    loader: async () => {
      calls++;
      await gate;
      return typeof answer === 'function' ? (answer as () => T)() : answer;
    },
    release,
    fail,
    get calls() {
      return calls;
    },
  };
}
