import { MissingDependencyError } from './errors.js';

const cache = new Map<string, Promise<unknown>>();

/**
 * Loads an optional or native peer dependency on first use (never at module load), with an
 * error that says what to install. `hint` is appended, e.g. the build-script allow-list note.
 *
 * Pass `importer` — `() => import('hnswlib-node')` written in YOUR package — so the specifier
 * resolves from your package, where the peer is installed. Without it the specifier resolves
 * from core's own location, which pnpm's strict layout does not give access to your peers.
 */
export function lazyImport<T>(specifier: string, requiredBy: string, hint = '', importer?: () => Promise<T>): Promise<T> {
  const cacheKey = requiredBy + '\u0000' + specifier;
  let p = cache.get(cacheKey) as Promise<T> | undefined;
  if (!p) {
    p = (importer ? importer() : (import(specifier) as Promise<T>)).catch((cause: unknown) => {
      cache.delete(cacheKey);
      const reason = (cause as Error)?.message ?? String(cause);
      throw new MissingDependencyError(
        specifier,
        `${requiredBy} needs "${specifier}", which could not be loaded (${reason}). Install it: pnpm add ${specifier}` + (hint ? `. ${hint}` : ''),
        { cause },
      );
    });
    cache.set(cacheKey, p);
  }
  return p;
}
