import { InvalidOptionError, type Embedder } from '@strata-cache/core';
import { numbersGuard } from '@strata-cache/semantic-guards';
import { describe, expect, it } from 'vitest';
import { embeddingAnswerJudge, LexicalAgreement, llmAnswerJudge } from '../src/index.js';

/** Bag-of-words embedder: one dimension per hashed word, unit length. Counts its calls. */
function bagEmbedder(): Embedder & { calls: number } {
  const dim = 64;
  const e = {
    id: 'bag',
    dimensions: dim,
    calls: 0,
    async embed(texts: readonly string[]) {
      e.calls++;
      return texts.map((t) => {
        const v = new Float32Array(dim);
        for (const w of t.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
          let h = 0;
          for (const c of w) h = (h * 31 + c.charCodeAt(0)) >>> 0;
          v[h % dim]! += 1;
        }
        const n = Math.hypot(...v) || 1;
        return v.map((x) => x / n);
      });
    },
  };
  return e;
}

const card = 'Cards usually arrive within 3 to 5 working days. Track it in the app under Card.';
const card2 = 'Your card should arrive in 3 to 5 working days; you can track it under Card in the app.';
const pin = 'You can change your PIN at any ATM that offers PIN services, using your current PIN.';

describe('embeddingAnswerJudge', () => {
  it('scores the same answer high (certain when verbatim), another answer low', async () => {
    const judge = embeddingAnswerJudge({ embedder: bagEmbedder() });
    // Teach the word statistics a few answers, as a running cache would.
    for (const a of [card, card2, pin, 'Transfers arrive in one working day.', 'Top-ups are free by bank transfer.'])
      await judge.judge({ query: 'q', cachedAnswer: a, freshAnswer: a });
    const same = await judge.judge({ query: 'when will my card come', cachedAnswer: card, freshAnswer: card });
    expect(same.certain).toBe(true);
    expect(same.score).toBeGreaterThan(0.9);
    const reworded = await judge.judge({ query: 'when will my card come', cachedAnswer: card, freshAnswer: card2 });
    const other = await judge.judge({ query: 'when will my card come', cachedAnswer: pin, freshAnswer: card2 });
    expect(reworded.certain).toBe(false);
    expect(reworded.score).toBeGreaterThan(other.score + 0.2);
  });

  it('compares only the words of answers the embedder cannot represent', async () => {
    // The bag embedder sees no Cyrillic word: two different Russian answers get the same (empty) vector.
    const ru1 = 'Карта придёт через три рабочих дня, отследить её можно в приложении.';
    const ru2 = 'Сменить ПИН можно в любом банкомате, указав текущий ПИН.';
    const blindJudge = embeddingAnswerJudge({ embedder: { ...bagEmbedder(), represents: (t: string) => !/[\u0400-\u04ff]/.test(t) } });
    const seeing = embeddingAnswerJudge({ embedder: bagEmbedder() });
    for (const j of [blindJudge, seeing]) for (const a of [card, card2, pin, ru1, ru2]) await j.judge({ query: 'q', cachedAnswer: a, freshAnswer: a });
    const wrongWithoutCheck = await seeing.judge({ query: 'q', cachedAnswer: ru1 + ' ok', freshAnswer: ru2 + ' ok' });
    const other = await blindJudge.judge({ query: 'q', cachedAnswer: ru1 + ' ok', freshAnswer: ru2 + ' ok' });
    const same = await blindJudge.judge({ query: 'q', cachedAnswer: ru1, freshAnswer: ru1 });
    expect(wrongWithoutCheck.score).toBeGreaterThan(0.4);
    expect(other.score).toBeLessThan(0.2);
    expect(other.certain).toBe(false);
    expect(other.reason).toMatch(/cannot represent/);
    expect(same.score).toBeGreaterThan(0.9);
    expect(same.certain).toBe(false);
    // Representable answers are judged as before.
    const reworded = await blindJudge.judge({ query: 'q', cachedAnswer: card, freshAnswer: card2 });
    expect(reworded.reason).toMatch(/answer cosine/);
  });

  it('uses answer vectors it is given instead of embedding again', async () => {
    const e = bagEmbedder();
    const judge = embeddingAnswerJudge({ embedder: e });
    const [u, v] = await e.embed([card, pin]);
    e.calls = 0;
    await judge.judge({ query: 'q', cachedAnswer: card, freshAnswer: pin, cachedAnswerVector: u, freshAnswerVector: v });
    expect(e.calls).toBe(0);
    await judge.judge({ query: 'q', cachedAnswer: card, freshAnswer: pin, cachedAnswerVector: u });
    expect(e.calls).toBe(1);
  });

  it('halves the score when a guard on the answers objects (opt-in)', async () => {
    const plain = embeddingAnswerJudge({ embedder: bagEmbedder() });
    const guarded = embeddingAnswerJudge({ embedder: bagEmbedder(), guards: [numbersGuard({ rejectOneSided: false })] });
    const a = 'Delivery takes 3 working days.';
    const b = 'Delivery takes 10 working days.';
    const p = await plain.judge({ query: 'q', cachedAnswer: a, freshAnswer: b });
    const g = await guarded.judge({ query: 'q', cachedAnswer: a, freshAnswer: b });
    expect(g.score).toBeCloseTo(p.score / 2, 6);
    expect(g.reason).toMatch(/numbers/);
  });

  it('contrasts with the rival candidates’ answers: an overlapping answer closer to a rival scores low', async () => {
    const judge = embeddingAnswerJudge({ embedder: bagEmbedder() });
    const arrival = 'Cards arrive within 3 to 5 working days. Track your card in the app under Card.';
    const estimate = 'Delivery of a new card takes 3 to 5 working days; express delivery takes 1 to 2 days.';
    const estimate2 = 'A new card takes 3 to 5 working days to deliver, or 1 to 2 days with express delivery.';
    for (const a of [arrival, estimate, pin, 'Transfers arrive in one working day.']) await judge.judge({ query: 'q', cachedAnswer: a, freshAnswer: a });
    // The fresh answer is about delivery estimates; the cached one about a card that has not arrived.
    const alone = await judge.judge({ query: 'q', cachedAnswer: arrival, freshAnswer: estimate2 });
    const contrasted = await judge.judge({ query: 'q', cachedAnswer: arrival, freshAnswer: estimate2, rivals: [{ text: estimate }] });
    expect(contrasted.score).toBeLessThan(alone.score);
    expect(contrasted.certain).toBe(false);
    expect(contrasted.reason).toMatch(/best rival/);
    // A rival that agrees less with the fresh answer than the cached one does changes nothing.
    const right = await judge.judge({ query: 'q', cachedAnswer: estimate, freshAnswer: estimate2 });
    const rightWithRival = await judge.judge({ query: 'q', cachedAnswer: estimate, freshAnswer: estimate2, rivals: [{ text: pin }] });
    expect(rightWithRival.score).toBeCloseTo(right.score, 6);
    // contrastWeight 0 ignores rivals.
    const off = embeddingAnswerJudge({ embedder: bagEmbedder(), contrastWeight: 0 });
    const o1 = await off.judge({ query: 'q', cachedAnswer: arrival, freshAnswer: estimate2 });
    const o2 = await off.judge({ query: 'q', cachedAnswer: arrival, freshAnswer: estimate2, rivals: [{ text: estimate }] });
    expect(o2.score).toBeCloseTo(o1.score, 6);
  });

  it('validates its options', () => {
    expect(() => embeddingAnswerJudge({ embedder: bagEmbedder(), contrastWeight: -1 })).toThrow(/contrastWeight/);
    expect(() => embeddingAnswerJudge({ embedder: bagEmbedder(), maxDocuments: 0 })).toThrow(/maxDocuments/);
    expect(() => embeddingAnswerJudge({} as never)).toThrow(InvalidOptionError);
    expect(() => embeddingAnswerJudge({ embedder: bagEmbedder(), lexicalWeight: 2 })).toThrow(/lexicalWeight/);
    expect(() => embeddingAnswerJudge({ embedder: bagEmbedder(), other: 1 } as never)).toThrow(/unknown option "other"/);
  });
});

describe('LexicalAgreement', () => {
  it('weighs words every answer shares less than the distinctive ones', () => {
    const lex = new LexicalAgreement();
    const boiler = 'Thanks for reaching out. Let me know if there is anything else.';
    for (let i = 0; i < 20; i++) lex.score(`${boiler} Topic ${i} answer text.`, `Other ${i}`);
    const sharedBoilerplate = lex.score(`${boiler} Your PIN is in the app.`, `${boiler} Refunds take five days.`);
    const sharedSubstance = lex.score('Your PIN is in the app.', 'You will find the PIN in the app.');
    expect(sharedSubstance).toBeGreaterThan(sharedBoilerplate);
  });
});

describe('llmAnswerJudge', () => {
  it('asks the model one question and reads SAME / DIFFERENT', async () => {
    const prompts: string[] = [];
    const judge = llmAnswerJudge({
      ask: async (p) => {
        prompts.push(p);
        return p.includes('PIN') ? 'DIFFERENT' : ' same ';
      },
    });
    expect((await judge.judge({ query: 'when does my card arrive', cachedAnswer: card, freshAnswer: card2 })).score).toBe(1);
    expect((await judge.judge({ query: 'when does my card arrive', cachedAnswer: pin, freshAnswer: card2 })).score).toBe(0);
    expect(prompts[0]).toMatch(/Question: when does my card arrive/);
    expect(() => llmAnswerJudge({} as never)).toThrow(/ask/);
  });
});
