import { InvalidOptionError, StrataError } from '@strata-cache/core';
import { describe, expect, it } from 'vitest';
import {
  argumentOrderGuard,
  contentOverlapGuard,
  defaultGuards,
  directionGuard,
  entitiesGuard,
  explainGuards,
  extractMentions,
  negationGuard,
  numbersGuard,
  oppositesGuard,
  runGuards,
  symbolsGuard,
  tokenize,
} from '../src/index.js';
import type { SemanticGuard } from '@strata-cache/core';

const check = (g: SemanticGuard, query: string, candidate: string, similarity = 0.97) => g.check({ query, candidate, similarity, threshold: 0.9 });
const rejects = (g: SemanticGuard, a: string, b: string) => {
  // Guards are used both ways round (stored text vs new query): test both.
  expect(check(g, a, b).accept, `${g.name} should reject: ${a} | ${b}`).toBe(false);
  expect(check(g, b, a).accept, `${g.name} should reject (swapped): ${b} | ${a}`).toBe(false);
};
const accepts = (g: SemanticGuard, a: string, b: string) => {
  expect(check(g, a, b), `${g.name} should accept: ${a} | ${b}`).toEqual({ accept: true });
  expect(check(g, b, a), `${g.name} should accept (swapped): ${b} | ${a}`).toEqual({ accept: true });
};

describe('tokenize', () => {
  it('expands negative contractions and keeps numbers with their suffixes', () => {
    expect(tokenize("Doesn't it cost $5.50 for 3rd-class seats?").map((t) => t.lower)).toEqual([
      'does',
      'not',
      'it',
      'cost',
      '$',
      '5.50',
      'for',
      '3rd',
      'class',
      'seats',
    ]);
    expect(tokenize("I can't, won't and cannot").map((t) => t.lower)).toEqual(['i', 'can', 'not', 'will', 'not', 'and', 'can', 'not']);
  });
  it('drops an answer particle before a comma', () => {
    expect(tokenize('No, it does not exist.').map((t) => t.lower)).toEqual(['it', 'does', 'not', 'exist']);
  });
  it('is safe on words that are Object prototype keys', () => {
    expect(() => extractMentions(tokenize('constructor toString valueOf hasOwnProperty __proto__'))).not.toThrow();
  });
});

describe('numbers guard', () => {
  const g = numbersGuard();
  it('rejects different numbers, amounts, ordinals, units and dates', () => {
    rejects(g, 'Book 3 seats for Friday', 'Book 30 seats for Friday');
    rejects(g, 'Is a $500 laptop enough?', 'Is a $1,500 laptop enough?');
    rejects(g, 'Which rooms are on the second floor?', 'Which rooms are on the third floor?');
    rejects(g, 'Who was the 16th president?', 'Who was the 26th president?');
    rejects(g, 'How far is it in km?', 'How far is it in miles?');
    rejects(g, 'Is the office open on Saturday?', 'Is the office open on Sunday?');
    rejects(g, 'What happened in 2008?', 'What happened in 2018?');
    rejects(g, 'Schedule it for 3pm', 'Schedule it for 5pm');
    rejects(g, 'Summarise it in two sentences', 'Summarise it in ten sentences');
    rejects(g, 'World War II causes', 'World War III causes');
    rejects(g, 'Struggles of a woman in her forties', 'Struggles of a woman in her fifties');
  });
  it('rejects a number only one side mentions unless rejectOneSided is off', () => {
    rejects(g, 'What are the best movies of all time?', 'What are the five best movies of all time?');
    accepts(numbersGuard({ rejectOneSided: false }), 'What are the best movies of all time?', 'What are the five best movies of all time?');
  });
  it('accepts the same quantity written differently', () => {
    accepts(g, 'Convert 5 kilometers to miles', 'Convert 5 km to miles');
    accepts(g, 'Can you book three seats?', 'Can you book 3 seats?');
    accepts(g, 'Is 8 GB of RAM enough?', 'Is 8GB RAM enough?');
    accepts(g, 'What is twenty five percent of 80?', 'What is 25 % of 80?');
    accepts(g, 'A 1,000 word essay', 'A 1000 word essay');
    accepts(g, 'How long does it take to boil an egg?', 'How many minutes to boil an egg?');
    accepts(g, 'Which one is better?', 'Which is better?');
  });
  it('ignores a quantity restated in other units, but not a different second quantity', () => {
    accepts(g, 'The park covers 8,000 hectares (20,000 acres)', 'The park covers 8000 hectares');
    accepts(g, 'A 5 km (3.1 miles) run', 'A 5 km run');
    accepts(g, 'It was 100°F (38°C) outside', 'It was 100°F outside');
    rejects(g, 'The park covers 8,000 hectares (50,000 acres)', 'The park covers 8000 hectares');
    rejects(g, 'Run 3 km then 5 miles', 'Run 3 km');
  });
  it('compares billing periods and rates: per year ≠ per month, monthly = per month', () => {
    rejects(g, 'How much does the Pro plan cost per year?', 'How much does the Pro plan cost per month?');
    rejects(g, 'What is the annual price of the Pro plan?', 'What is the monthly price of the Pro plan?');
    rejects(g, "What's the price of Pro if I pay yearly?", "What's the price of Pro if I pay monthly?");
    rejects(g, 'How often should I water it, once a week?', 'How often should I water it, once a day?');
    accepts(g, 'What does Pro cost per month?', 'What is the monthly cost of Pro?');
    accepts(g, 'How much is the plan per year?', 'How much is the plan annually?');
    // a period only one side names is wording, not a different question, on its own
    accepts(g, 'How much does the Pro plan cost per month?', 'How much does the Pro plan cost?');
  });
  it('reports what differs', () => {
    const v = check(g, 'Book 3 seats', 'Book 30 seats');
    expect(v).toEqual({ accept: false, reason: 'different quantities: "3" vs "30"' });
  });
});

describe('negation guard', () => {
  const g = negationGuard();
  it('rejects a flipped polarity', () => {
    rejects(g, 'Does the free plan include API access?', "Doesn't the free plan include API access?");
    rejects(g, 'How do I make pancakes with eggs?', 'How do I make pancakes without eggs?');
    rejects(g, 'Why is my phone charging?', 'Why is my phone not charging?');
    rejects(g, 'Has anyone climbed it in winter?', 'Has no one ever climbed it in winter?');
    rejects(g, 'Which foods contain gluten?', 'Which foods never contain gluten?');
  });
  it('accepts negations worded differently, idioms, and negated clauses about something else', () => {
    accepts(g, "Why can't I sleep at night?", 'Why am I not able to sleep at night?');
    accepts(g, "Why doesn't my laptop turn on?", 'Why does my laptop not turn on?');
    accepts(g, 'LOAD_HU is not a feature of v2.10.0.', "No, LOAD_HU doesn't exist in v2.10.0.");
    accepts(g, 'Is Daniel Tosh funny? Why or why not?', 'Is Daniel Tosh funny?');
    accepts(g, 'Not only fast but cheap', 'Fast and cheap');
    accepts(g, 'How can I earn money online without investment?', 'How can I earn money on the internet?');
  });
  it('takes a negated verb of knowing to negate the knowing, not what is known', () => {
    // What the asker does not know is what the other text asks: the same question.
    accepts(g, "I can't remember my password. How do I change it?", 'How do I reset my password?');
    accepts(g, "I don't know how to cancel my subscription.", 'How do I cancel my subscription?');
    accepts(g, "I'm not sure why my card was declined", 'Why was my card declined?');
    accepts(g, 'I have no idea where my order is', 'Where is my order?');
    accepts(g, "I don't really understand this fee on my statement", 'What is this fee on my statement?');
    accepts(g, 'Not sure why my card was declined', 'Why was my card declined?');
    // The knowing itself flipped is still a flip.
    rejects(g, "I don't know my passcode", 'I know my passcode but the app says it is wrong');
    rejects(g, "Why doesn't the app remember my login?", 'Why does the app remember my login?');
    // Someone else's not knowing, or knowing a person, is an ordinary negation.
    rejects(g, 'Which camping tools do most people not know about?', 'Which camping tools do most people know about?');
    rejects(g, 'How do I start a conversation with a girl I know?', "How do I start a conversation with a girl I don't know?");
    rejects(g, 'I know them, can I add them as contacts?', "I don't know them, can I add them as contacts?");
    // Any other verb keeps its object in scope.
    rejects(g, "Why can't I log in to my account?", 'Why can I log in to my account?');
    rejects(g, "I can't pay with my card", 'I can pay with my card');
  });
});

describe('direction guard', () => {
  const g = directionGuard();
  it('rejects opposite directions and relations', () => {
    rejects(g, 'How do I import contacts?', 'How do I export contacts?');
    rejects(g, 'Orders of more than 50 dollars', 'Orders of less than 50 dollars');
    rejects(g, 'Sales since March', 'Sales until March');
    rejects(g, 'What should I eat before a workout?', 'What should I eat after a workout?');
    // "within" a period is before its end: not the same as after it (scored 0.985 by USE-lite).
    rejects(g, 'Can I return an item after 30 days?', 'Can I return an item within 30 days?');
    rejects(g, 'Is it a good time to buy a house?', 'Is it a good time to sell a house?');
    rejects(g, 'How do I transfer files to my phone?', 'How do I transfer files from my phone?');
    // Data into a system (import, upload) against data out of it (export, download).
    rejects(g, 'How do I import my projects from CSV?', 'How can I download my projects as CSV?');
    rejects(g, 'How do I upload a backup?', 'How do I export a backup?');
  });
  it('accepts synonyms of the same pole and one-sided additions', () => {
    accepts(g, 'How can I lose weight fast?', 'What is the quickest way to lose weight?');
    accepts(g, 'Which is bigger, Canada or the US?', 'Which is larger: the US or Canada?');
    accepts(g, 'What was life like before the revolution?', 'What was life like before and after the revolution?');
    accepts(g, 'How do I import my projects from CSV?', 'How can I upload my projects from a CSV?');
  });
  it('takes extra groups for a domain', () => {
    const custom = directionGuard({ extraGroups: [[['bullish'], ['bearish']]] });
    accepts(g, 'Why is the market bullish?', 'Why is the market bearish?');
    rejects(custom, 'Why is the market bullish?', 'Why is the market bearish?');
  });
});

describe('opposites guard', () => {
  const g = oppositesGuard();
  it('rejects opposite actions from the lexicon and from reversing prefixes', () => {
    rejects(g, 'How do I start the service?', 'How do I stop the service?');
    rejects(g, 'Should I accept the offer?', 'Should I decline the offer?');
    rejects(g, 'How do I lock the door?', 'How do I unlock the door?');
    rejects(g, 'Why does it connect randomly?', 'Why does it disconnect randomly?');
    rejects(g, 'Is it possible to divide by zero?', 'Is it impossible to divide by zero?');
    rejects(g, 'How do I install Node?', 'How do I reinstall Node?');
    rejects(g, 'How do I mute myself?', 'How do I unmute myself?'); // not listed anywhere: prefix rule
    rejects(g, 'How do I delete a file?', 'How do I recover a file?');
    // "Switch off" / "turn on" against "enable" / "disable".
    rejects(g, 'Where do I switch off two-factor authentication?', 'How do I enable two-factor authentication?');
    rejects(g, 'How do I turn on two-factor authentication?', 'How do I disable two-factor authentication?');
  });
  it('rejects the reverse action even when its object names the other pole', () => {
    // "archived" describes the project; the action asked for is the reverse of archiving.
    rejects(g, 'How can I restore an archived project?', 'How can I archive an old project?');
    rejects(g, 'How do I recover a deleted file?', 'How do I delete a file?');
    rejects(g, 'How do I stop a running container?', 'How do I run a container?');
    // Both poles in the same form on one side: an addition, not a reversal.
    accepts(g, 'How do I start and stop the service?', 'How do I stop the service?');
    accepts(g, 'How do I turn off notifications on my iPhone?', 'How can I disable notifications on an iPhone?');
  });
  it('accepts words that merely start like a prefix, and prefixes can be switched off', () => {
    accepts(g, 'How do I search the archive?', 'How do I research the archive?');
    accepts(oppositesGuard({ prefixes: false }), 'How do I mute myself?', 'How do I unmute myself?');
    accepts(g, 'How do I turn off notifications?', 'How can I disable notifications?');
    // "on" as a preposition beside a pole word of its own: an addition, not a reversal.
    accepts(g, 'How do I block users on Slack?', 'How do I block users?');
    accepts(g, 'Where do I switch on two-factor authentication?', 'How do I enable two-factor authentication?');
  });
});

describe('argument-order guard', () => {
  const g = argumentOrderGuard();
  it('rejects swapped arguments around the same relation', () => {
    rejects(g, 'Can a lion beat a tiger?', 'Can a tiger beat a lion?');
    rejects(g, 'Convert USD to EUR', 'Convert EUR to USD');
    rejects(g, 'Is Python slower than Java?', 'Is Java slower than Python?');
    rejects(g, 'How long is the flight to Tokyo from London?', 'How long is the flight from Tokyo to London?');
    // Around a copula, when the two words sit right beside it; a reordered clause is not a swap.
    rejects(g, 'What percentage of students are athletes?', 'What percentage of athletes are students?');
    accepts(g, 'Which cars are the best in winter?', 'In winter, which are the best cars?');
    rejects(g, 'Redirect HTTP to HTTPS', 'Redirect HTTPS to HTTP');
    rejects(g, 'Which algorithm looks complex but is simple?', 'Which algorithm looks simple but is complex?');
  });
  it('accepts symmetric relations, moved phrases and voice changes', () => {
    accepts(g, 'What is the difference between TCP and UDP?', 'What is the difference between UDP and TCP?');
    accepts(g, 'Which is better, Rust or Go?', 'Which is better, Go or Rust?');
    accepts(g, 'In Python, how do I sort a list?', 'How do I sort a list in Python?');
    accepts(g, 'Datasets can load multiple CSV files.', 'Multiple CSV files can be loaded using Datasets.');
  });
});

describe('entities guard', () => {
  const g = entitiesGuard();
  it('rejects a swapped name', () => {
    rejects(g, 'What is the population of Springfield, Illinois?', 'What is the population of Springfield, Missouri?');
    rejects(g, 'Is Rust a good first language?', 'Is Go a good first language?');
    rejects(g, 'Does the hotel accept Visa?', 'Does the hotel accept Mastercard?');
    rejects(g, 'should i learn python or javascript', 'should i learn python or java');
    rejects(g, 'How do I reset an iPhone 12?', 'How do I reset a Pixel 7?');
    // Many capitalised words, but lower-case function words: not Title Case, so capitals still count.
    rejects(g, 'Is there a Drug and Alcohol Rehab Center in Denali County AK?', 'Is there a Drug and Alcohol Rehab Center in Anchorage County AK?');
  });
  it('rejects a name whose slot holds another word on the other side, whatever its case', () => {
    rejects(g, 'How much does the Team plan cost per month?', 'how much does the pro plan cost per month?');
    rejects(g, 'Does it integrate with Slack today?', 'Does it integrate with email today?');
    // The same name written another way, or a name only added: not a swap.
    accepts(g, 'How much does the Team plan cost?', 'how much does the team plan cost?');
    accepts(g, 'What is the best antivirus for Android?', 'What is the best antivirus for android phones?');
  });
  it('accepts case, typos, acronyms and joined/split spellings of the same name', () => {
    accepts(g, 'how do i install python on windows', 'How do I install Python on Windows?');
    accepts(g, 'How do I learn Pyhton quickly?', 'How do I learn Python quickly?');
    accepts(g, 'What is the GDP of the United States?', 'What is the GDP of the US?');
    accepts(g, 'Why did Arnab Goswami resign from Times Now?', 'Why Arnab Goswami resigned from TimesNow?');
    accepts(g, 'It has JavaScript libraries with TypeScript types.', 'It has JS libraries with TS types.');
  });
  it('treats an added name as a difference only with rejectAdded', () => {
    accepts(g, 'What is the best antivirus?', 'What is the best antivirus for Android?');
    rejects(entitiesGuard({ rejectAdded: true }), 'What is the best antivirus?', 'What is the best antivirus for Android?');
  });
  it('leaves rewrites with many differing capitalised words to the embedding', () => {
    const a = 'The guide covers Introduction, Tutorials, Visual, Textual and Documentation sections for new users of the library';
    const b = 'The guide covers Overview, Guides, Vision, Text and Reference sections for new users of the library';
    accepts(g, a, b);
    rejects(entitiesGuard({ maxSwapped: 10 }), a, b);
  });
});

describe('content-overlap guard (optional second opinion)', () => {
  const g = contentOverlapGuard();
  it('rejects a different topic in the same frame', () => {
    rejects(g, 'What is the best way to learn guitar chords quickly?', 'What is the best way to cook salmon fillets quickly?');
  });
  it('accepts rewordings that share the topic words', () => {
    accepts(g, 'How do I center a div in CSS?', 'How can I center a div using CSS?');
  });
  it('skips the check above trustAbove', () => {
    const lenient = contentOverlapGuard({ trustAbove: 0.95 });
    expect(lenient.check({ query: 'learn guitar chords', candidate: 'cook salmon fillets', similarity: 0.96, threshold: 0.9 })).toEqual({ accept: true });
    expect(lenient.check({ query: 'learn guitar chords', candidate: 'cook salmon fillets', similarity: 0.94, threshold: 0.9 }).accept).toBe(false);
  });
});

describe('symbolsGuard', () => {
  const g = symbolsGuard();
  const check = (query: string, candidate: string) => g.check({ query, candidate, similarity: 0.99, threshold: 0.9 });
  it('rejects different emoji, or emoji on one side only', () => {
    expect(check('What does 🙃 mean?', 'What does 🫠 mean?')).toEqual({ accept: false, reason: 'different symbols: 🙃 vs 🫠' });
    expect(check("I'd like a 🍕", "I'd like a 🍣").accept).toBe(false);
    expect(check('What does 🙃 mean?', 'What does it mean?')).toEqual({ accept: false, reason: 'different symbols: 🙃 vs none' });
  });
  it('rejects different operators: what encoders barely see in code and math questions', () => {
    expect(check('Is x > 5 in this loop?', 'Is x < 5 in this loop?')).toEqual({ accept: false, reason: 'different symbols: > vs <' });
    expect(check('What does a += b do?', 'What does a -= b do?').accept).toBe(false);
    expect(check('== vs === in JavaScript', '= vs == in JavaScript').accept).toBe(false);
    expect(check('What does && mean in bash?', 'What does || mean in bash?').accept).toBe(false);
    expect(check('What does ?? do in C#?', 'What does ?. do in C#?').accept).toBe(false);
    expect(check('Is C# fast?', 'Is F# fast?')).toEqual({ accept: false, reason: 'different symbols: C# vs F#' });
  });
  it('passes ordinary punctuation, hyphens, slashes and the same operators', () => {
    expect(check('How do I learn C++?', 'What is the best way to learn C++?').accept).toBe(true);
    expect(check('What is an e-mail address?', 'What is an email address?').accept).toBe(true);
    expect(check('Note: how do I reset my password?', 'How do I reset my password?').accept).toBe(true);
    expect(check('What?! My card was charged twice!', 'Why was my card charged twice?').accept).toBe(true);
    expect(check('How do I use A/B testing?', 'How do I do A/B testing?').accept).toBe(true);
    expect(check('What does "rm -rf /" do?', 'What does rm -rf / do?').accept).toBe(true);
    expect(check('Why is x != y true here?', 'Why is x != y here true?').accept).toBe(true);
    expect(check('How do I export my projects to CSV??', 'How do I export my projects to CSV?').accept).toBe(true);
    expect(check('Is C++ good?', 'How good is C++?').accept).toBe(true);
    expect(check('Can you move task #820 to the Hiring board?', 'Could you move task #820 to Hiring?').accept).toBe(true);
    expect(check('What is the time complexity of quicksort...?', 'What is the time complexity of quicksort?').accept).toBe(true);
    // What real users type: stray spaces and keys, dashes, ampersands, percentages.
    expect(check('Do you have any accounts for children ?', 'Do you have accounts for children?').accept).toBe(true);
    expect(check('Would you please make it correct?I need it by tomorrow.', 'Please correct it, I need it by tomorrow.').accept).toBe(true);
    expect(check("It's not linked yet--how do I do that?", 'How do I link it?').accept).toBe(true);
    expect(check('I want to close my account & leave', 'I want to close my account and leave').accept).toBe(true);
    expect(check('How can I activate my card>', 'How can I activate my card?').accept).toBe(true);
    expect(check('Can I send the 5% deposit now?', 'Can I send the 5 percent deposit now?').accept).toBe(true);
    // Standing alone, a question mark is what is asked about.
    expect(check('What does ? mean in a regex?', 'What does * mean in a regex?').accept).toBe(false);
  });
  it('passes the same emoji in any order or number, plain text, and letter-like signs', () => {
    expect(check('Fingerprints in 🤗 Datasets are hashed', 'How does 🤗 Datasets compute fingerprints? 🤗').accept).toBe(true);
    expect(check('how do I reset my password', 'I forgot my password').accept).toBe(true);
    expect(check('Is Windows™ free?', 'Is Windows free?').accept).toBe(true);
    expect(check('Café opening hours', 'When does the café open?').accept).toBe(true);
  });
});

describe('defaultGuards and runGuards', () => {
  it('builds the seven default guards, cheapest first, content overlap off', () => {
    expect(defaultGuards().map((g) => g.name)).toEqual(['symbols', 'numbers', 'negation', 'direction', 'opposites', 'argument-order', 'entities']);
    expect(defaultGuards({ contentOverlap: true }).map((g) => g.name)).toContain('content-overlap');
  });
  it('switches each guard off', () => {
    const all = ['symbols', 'numbers', 'negation', 'direction', 'opposites', 'argument-order', 'entities'];
    const keys = ['symbols', 'numbers', 'negation', 'direction', 'opposites', 'argumentOrder', 'entities'] as const;
    keys.forEach((k, i) => expect(defaultGuards({ [k]: false }).map((g) => g.name)).toEqual(all.filter((_, j) => j !== i)));
    expect(
      defaultGuards({ symbols: false, numbers: false, negation: false, direction: false, opposites: false, argumentOrder: false, entities: false }),
    ).toEqual([]);
  });
  it('a switched-off guard no longer rejects its look-alike', () => {
    const input = { query: 'Book 3 seats', candidate: 'Book 30 seats', similarity: 0.99, threshold: 0.9 };
    expect(runGuards(defaultGuards(), input).accept).toBe(false);
    expect(runGuards(defaultGuards({ numbers: false }), input)).toEqual({ accept: true });
  });
  it('reports the rejecting guard and its reason', () => {
    const out = runGuards(defaultGuards(), { query: 'How do I lock the door?', candidate: 'How do I unlock the door?', similarity: 0.98, threshold: 0.9 });
    expect(out).toEqual({ accept: false, guard: 'opposites', reason: 'opposite meaning: "lock" vs "unlock"' });
    const all = explainGuards(defaultGuards(), {
      query: 'Book 3 seats without a view',
      candidate: 'Book 30 seats with a view',
      similarity: 0.98,
      threshold: 0.9,
    });
    expect(all.filter((v) => !v.accept).map((v) => v.guard)).toEqual(['numbers', 'negation']);
  });
  it('rejects unknown or mistyped options with InvalidOptionError', () => {
    expect(() => defaultGuards({ nubmers: false } as never)).toThrow(InvalidOptionError);
    expect(() => defaultGuards({ numbers: { rejectOneSide: true } } as never)).toThrow(/numbers\.rejectOneSide/);
    expect(() => defaultGuards({ negation: {} } as never)).toThrow(/must be a boolean/);
    expect(() => defaultGuards({ contentOverlap: { minJaccard: -1 } })).toThrow(/non-negative number/);
    expect(() => defaultGuards({ direction: { extraGroups: [['import']] as never } })).toThrow(InvalidOptionError);
    try {
      defaultGuards({ bogus: 1 } as never);
    } catch (e) {
      expect(StrataError.isInstance(e)).toBe(true);
      expect((e as InvalidOptionError).field).toBe('bogus');
    }
  });
});
