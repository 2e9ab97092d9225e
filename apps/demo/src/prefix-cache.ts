import { createHash } from 'node:crypto';

/**
 * The simulated provider's own prompt cache, modelled on the real ones: a prompt is the text of
 * its parts in the order the provider processes them (tools, instructions, messages); a prefix
 * seen before is billed as cached.
 *
 * - OpenAI (automatic): prompts of 1,024+ tokens; the longest prefix seen before, in 128-token
 *   steps from 1,024 (every prompt leaves its own prefixes behind). `prompt_cache_key` only
 *   routes requests to a cache machine; with one simulated machine it changes nothing here.
 * - Anthropic (explicit): only prefixes ending at a `cache_control` breakpoint, of 1,024+ tokens;
 *   the longest one seen before is read, the breakpoints after it are written.
 *
 * Tokens are estimated as characters / 4, like the rest of the simulation. Caches are per
 * namespace (an organisation / project): tenants never share a cached prefix.
 */
export class PrefixCache {
  private readonly seen = new Map<string, Set<string>>();

  constructor(
    private readonly minTokens = 1024,
    private readonly stepTokens = 128,
    /** Prefixes remembered per namespace; the oldest go first. */
    private readonly maxPerNamespace = 50_000,
  ) {}

  /** OpenAI: cached tokens of a prompt made of `parts` (in order), remembering its prefixes. */
  automatic(namespace: string, parts: readonly string[]): number {
    const text = parts.join('\n');
    const tokens = estimate(text);
    if (tokens < this.minTokens) return 0;
    const set = this.space(namespace);
    let cached = 0;
    const fresh: string[] = [];
    for (let t = this.minTokens; t <= tokens; t += this.stepTokens) {
      const h = digest(text.slice(0, t * 4));
      if (set.has(h)) cached = t;
      else fresh.push(h);
    }
    this.remember(set, fresh);
    return cached;
  }

  /**
   * Anthropic: `blocks` in processing order, each saying whether a breakpoint follows it.
   * Returns the tokens read from the cache and the tokens written to it.
   */
  breakpoints(namespace: string, blocks: ReadonlyArray<{ text: string; breakpoint: boolean }>): { read: number; write: number } {
    const set = this.space(namespace);
    let text = '';
    const ends: number[] = [];
    for (const b of blocks) {
      text += b.text + '\n';
      if (b.breakpoint) ends.push(text.length);
    }
    let read = 0;
    let last = 0;
    const fresh: string[] = [];
    for (const end of ends) {
      const tokens = estimate(text.slice(0, end));
      if (tokens < this.minTokens) continue;
      const h = digest(text.slice(0, end));
      if (set.has(h)) read = tokens;
      else fresh.push(h);
      last = tokens;
    }
    this.remember(set, fresh);
    return { read, write: fresh.length > 0 ? last - read : 0 };
  }

  private space(namespace: string): Set<string> {
    let set = this.seen.get(namespace);
    if (!set) this.seen.set(namespace, (set = new Set()));
    return set;
  }

  private remember(set: Set<string>, hashes: readonly string[]): void {
    for (const h of hashes) set.add(h);
    if (set.size <= this.maxPerNamespace) return;
    for (const h of set) {
      set.delete(h);
      if (set.size <= this.maxPerNamespace) break;
    }
  }
}

function estimate(text: string): number {
  return Math.max(1, Math.round(text.length / 4));
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}
