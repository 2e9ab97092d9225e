// Canonical keys sort object keys: right for the request body, where key order never changes the
// answer, wrong inside a JSON Schema's `properties`, whose order is the order in which providers
// generate the fields (structured outputs, tool arguments). This records that order beside the
// canonical body, so two schemas that differ only in property order get different keys.

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The `properties` key order of every schema in `schemas`, as a list of name lists, or undefined
 * when no schema has two or more properties (nothing whose order could matter).
 *
 * Injective together with the canonical body: the walk visits nodes in sorted-key order, which
 * the canonical form fixes, so equal canonical bodies with different property orders always
 * yield different lists.
 */
export function propertyOrder(schemas: readonly unknown[]): string[][] | undefined {
  const out: string[][] = [];
  let ordered = false;
  const walk = (node: unknown, depth: number): void => {
    if (depth > 64) return; // no schema is this deep; a cyclic value is rejected by the key anyway
    if (Array.isArray(node)) {
      for (const item of node) walk(item, depth + 1);
      return;
    }
    if (!isObject(node)) return;
    const props = node['properties'];
    if (isObject(props)) {
      const names = Object.keys(props);
      out.push(names);
      if (names.length > 1) ordered = true;
    }
    for (const k of Object.keys(node).sort()) walk(node[k], depth + 1);
  };
  for (const s of schemas) walk(s, 0);
  return ordered ? out : undefined;
}

// Paths split once: an endpoint asks for the same few paths on every request.
const splitPaths = new Map<string, readonly string[]>();

/** Values at `path` (`tools.*.function.parameters`) in a request body; `*` spans an array. */
export function valuesAt(body: unknown, path: string): unknown[] {
  let parts = splitPaths.get(path);
  if (parts === undefined) {
    parts = path.split('.');
    if (splitPaths.size < 256) splitPaths.set(path, parts);
  }
  let current: unknown[] = [body];
  for (const part of parts) {
    if (current.length === 0) break;
    const next: unknown[] = [];
    for (const v of current) {
      if (part === '*') {
        if (Array.isArray(v)) next.push(...v);
      } else if (isObject(v) && v[part] !== undefined) next.push(v[part]);
    }
    current = next;
  }
  return current;
}
