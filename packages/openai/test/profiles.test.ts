import { computeKey, resolveScope } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { OPENAI_IGNORED_FIELDS, openaiChatProfile, openaiEmbeddingsProfile, openaiResponsesProfile } from '../src/profiles.js';

const scope = resolveScope('acme');
const chat = { model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content: 'Where is my order?' }] };

describe('OpenAI profiles', () => {
  it('ignore the fields OpenAI uses for storage, routing and abuse tracking, which core keys', () => {
    expect([...OPENAI_IGNORED_FIELDS].sort()).toEqual(['prompt_cache_key', 'prompt_cache_retention', 'safety_identifier', 'service_tier', 'store']);
    const fields = { store: true, service_tier: 'flex', prompt_cache_key: 'support-v3', prompt_cache_retention: '24h', safety_identifier: 'user-hash' };
    // Responses keeps `store`: a stored response can be continued by its id, an unstored one cannot.
    for (const [profile, counted] of [
      [openaiChatProfile, []],
      [openaiResponsesProfile, ['store']],
    ] as const) {
      const k = computeKey(chat, scope, profile).id;
      for (const [field, value] of Object.entries(fields)) {
        const same = computeKey({ ...chat, [field]: value }, scope, profile).id === k;
        expect(same, `${profile.id}: ${field}`).toBe(!(counted as readonly string[]).includes(field));
      }
      expect(computeKey({ ...chat, temperature: 1 }, scope, profile).id).not.toBe(k);
    }
    const embed = { model: 'text-embedding-3-small', input: 'hello' };
    expect(computeKey({ ...embed, store: true }, scope, openaiEmbeddingsProfile).id).toBe(computeKey(embed, scope, openaiEmbeddingsProfile).id);
  });
});
