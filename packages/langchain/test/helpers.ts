/** True when `value` or anything reachable from it is frozen (what LangChain cannot write to). */
export function anyFrozen(value: unknown, seen = new Set<unknown>()): boolean {
  if (value === null || typeof value !== 'object' || seen.has(value)) return false;
  seen.add(value);
  if (Object.isFrozen(value)) return true;
  return Object.values(value).some((v) => anyFrozen(v, seen));
}
