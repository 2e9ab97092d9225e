import { chatProfile, computeKey, resolveScope } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import { inModelFamilies, propertyOrder, valuesAt, withReasoningRule } from '../src/index.js';

describe('propertyOrder', () => {
  const person = (order: string[]) => ({ type: 'object', properties: Object.fromEntries(order.map((k) => [k, { type: 'string' }])) });

  it('records the order of every properties map, nested ones included, walking in sorted-key order', () => {
    const schema = { type: 'object', properties: { b: person(['x', 'y']), a: { type: 'array', items: person(['q', 'p']) } }, $defs: { z: person(['m', 'n']) } };
    expect(propertyOrder([schema])).toEqual([
      ['b', 'a'],
      ['m', 'n'],
      ['q', 'p'],
      ['x', 'y'],
    ]);
    // The same schema written with its keywords in another order walks the same way.
    const reordered = {
      $defs: { z: person(['m', 'n']) },
      properties: { b: person(['x', 'y']), a: { items: person(['q', 'p']), type: 'array' } },
      type: 'object',
    };
    expect(propertyOrder([reordered])).toEqual(propertyOrder([schema]));
  });

  it('is undefined when no properties map has two names (order cannot matter)', () => {
    expect(propertyOrder([])).toBeUndefined();
    expect(propertyOrder([person(['only'])])).toBeUndefined();
    expect(propertyOrder(['not a schema', 3, null])).toBeUndefined();
  });

  it('gives different keys to schemas that differ only in order, and equal keys otherwise', () => {
    const scope = resolveScope(undefined);
    const key = (order: string[]) =>
      computeKey({ schema: person(order), strata_http: { propertyOrder: propertyOrder([person(order)]) } }, scope, chatProfile).id;
    expect(key(['a', 'b'])).not.toBe(key(['b', 'a']));
    expect(key(['a', 'b'])).toBe(key(['a', 'b']));
  });
});

describe('valuesAt', () => {
  it('follows a dotted path, * spanning arrays', () => {
    const body = { tools: [{ function: { parameters: 1 } }, { function: {} }, { function: { parameters: 2 } }], text: { format: { schema: 3 } } };
    expect(valuesAt(body, 'tools.*.function.parameters')).toEqual([1, 2]);
    expect(valuesAt(body, 'text.format.schema')).toEqual([3]);
    expect(valuesAt(body, 'missing.*.x')).toEqual([]);
  });
});

describe('the reasoning rule', () => {
  it('inModelFamilies matches name prefixes and *', () => {
    expect(inModelFamilies('gpt-5-mini', ['gpt-5'])).toBe(true);
    expect(inModelFamilies('gpt-4o', ['gpt-5'])).toBe(false);
    expect(inModelFamilies('anything', ['*'])).toBe(true);
    expect(inModelFamilies(undefined, ['*'])).toBe(false);
  });

  it('keeps the profile id and its rule for other requests', () => {
    const profile = withReasoningRule(chatProfile, { packageName: 'p', isReasoning: (r) => r['think'] === true, families: ['m-'] });
    expect(profile.id).toBe(chatProfile.id);
    expect(profile.isDeterministic!({ model: 'x', temperature: 0 })).toBe(true);
    expect(profile.isDeterministic!({ model: 'x', temperature: 1 })).toBe(false);
    expect(profile.isDeterministic!({ model: 'm-1', think: true })).toBe(true);
  });
});
