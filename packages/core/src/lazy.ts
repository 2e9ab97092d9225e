import { MissingDependencyError } from './errors.js';

const cache = new Map<string, Promise<unknown>>();

/** Options of `lazyImport`. */
export interface LazyImportOptions<M, T> {
  /** Appended to the error, e.g. the build-script allow-list note for a native addon. */
  hint?: string | undefined;
  /**
   * `() => import('hnswlib-node')` written in YOUR package, so the specifier resolves from your
   * package, where the peer is installed (pnpm's strict layout does not let core see your peers).
   */
  importer?: (() => Promise<M>) | undefined;
  /**
   * Turns the module into what you use (pick an export, touch a native addon once so an unbuilt
   * binary fails here rather than mid-request). A throw counts as "could not be loaded".
   */
  prepare?: ((module: M) => T) | undefined;
}

/**
 * Loads an optional or native peer dependency on first use (never at module load), once per
 * `requiredBy` + specifier, with an error that says what to install. A failed load is not
 * remembered: the next call tries again (after `pnpm rebuild`, say).
 *
 * The one loader for every @strata-cache package: `lazyImport(specifier, requiredBy, options)`, or
 * the older positional form `lazyImport(specifier, requiredBy, hint, importer)`.
 */
export function lazyImport<T>(specifier: string, requiredBy: string, hint?: string, importer?: () => Promise<T>): Promise<T>;
export function lazyImport<M, T = M>(specifier: string, requiredBy: string, options: LazyImportOptions<M, T>): Promise<T>;
export function lazyImport<M, T = M>(
  specifier: string,
  requiredBy: string,
  hintOrOptions: string | LazyImportOptions<M, T> = '',
  importer?: () => Promise<M>,
): Promise<T> {
  const o: LazyImportOptions<M, T> = typeof hintOrOptions === 'string' ? { hint: hintOrOptions, importer } : hintOrOptions;
  const cacheKey = requiredBy + '\u0000' + specifier;
  let p = cache.get(cacheKey) as Promise<T> | undefined;
  if (!p) {
    const load = o.importer ? o.importer() : (import(specifier) as Promise<M>);
    p = load
      .then((m) => (o.prepare ? o.prepare(m) : (m as unknown as T)))
      .catch((cause: unknown) => {
        cache.delete(cacheKey);
        const reason = (cause as Error)?.message ?? String(cause);
        throw new MissingDependencyError(
          specifier,
          `${requiredBy} needs "${specifier}", which could not be loaded (${reason}). Install it: pnpm add ${specifier} (npm: npm install ${specifier})` +
            (o.hint ? `. ${o.hint}` : ''),
          { cause },
        );
      });
    cache.set(cacheKey, p);
  }
  return p;
}
