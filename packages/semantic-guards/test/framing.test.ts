import { describe, expect, it } from 'vitest';
import { sameQuestion, sameText, unframed } from '../src/index.js';

describe('unframed / sameQuestion', () => {
  it('sets aside openers before a question and thanks or "please" after it', () => {
    expect(unframed('Hi, how do I reset my password?')).toBe('how do I reset my password?');
    expect(unframed('Hello there! What is the monthly price?')).toBe('What is the monthly price?');
    expect(unframed('Quick question: can I export to CSV?')).toBe('can I export to CSV?');
    expect(unframed('Sorry, how do I cancel?')).toBe('how do I cancel?');
    expect(unframed('please help: how do i export?')).toBe('how do i export?');
    expect(unframed('How do I reset my password? Thanks!')).toBe('How do I reset my password');
    expect(unframed('How much is the Pro plan each month, please?')).toBe('How much is the Pro plan each month');
    expect(unframed('Hi, quick question: can I pay yearly? Thanks a lot!')).toBe('can I pay yearly');
  });

  it('leaves framing that punctuation does not set off, and a text that is framing only', () => {
    expect(unframed('Hi how do I reset my password?')).toBe('Hi how do I reset my password?');
    expect(unframed('How do I say thanks')).toBe('How do I say thanks');
    expect(unframed('Please cancel my order')).toBe('Please cancel my order');
    expect(unframed('Thanks!')).toBe('Thanks!');
    expect(unframed('Hello!')).toBe('Hello!');
  });

  it('two prompts are the same question when only their framing (and what sameText ignores) differs', () => {
    expect(sameQuestion('Hi, how do I reset my password?', 'How do I reset my password? Thanks!')).toBe(true);
    expect(sameQuestion('Hello there! How do I cancel my subscription?', 'how do I cancel my subscription')).toBe(true);
    // sameText alone does not see these as the same words.
    expect(sameText('Hi, how do I reset my password?', 'How do I reset my password? Thanks!')).toBe(false);
  });

  it('a different word anywhere else keeps them apart', () => {
    expect(sameQuestion('Hi, how do I reset my password?', 'How do I reset my email? Thanks!')).toBe(false);
    expect(sameQuestion('Hi, how do I enable 2FA?', 'How do I disable 2FA?')).toBe(false);
    expect(sameQuestion('Hi, can I get a refund within 14 days?', 'Can I get a refund within 60 days?')).toBe(false);
    expect(sameQuestion('No, thanks. How do I cancel?', 'How do I cancel?')).toBe(false);
  });
});
