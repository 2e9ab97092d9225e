/** A map of sets (tag → records, partition → pending writes): add, and remove dropping empty sets. */
export function addTo<T>(index: Map<string, Set<T>>, k: string, v: T): void {
  let s = index.get(k);
  if (!s) index.set(k, (s = new Set()));
  s.add(v);
}

export function removeFrom<T>(index: Map<string, Set<T>>, k: string, v: T): void {
  const s = index.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) index.delete(k);
}
