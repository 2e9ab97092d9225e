// Conversational framing around a question: a greeting or opener before it ("Hi,", "Quick
// question:"), thanks or "please" after it ("… Thanks!", "…, please?"). It changes the exact key,
// not what is asked.
import { sameText } from './verifier.js';

// Framing is recognised only where punctuation sets it off from the question (an opener followed
// by , ! . : or ;, a closing word preceded by one): "Hi how do I …" or "… thanks" without it stay
// as they are, and two texts that differ otherwise never become the same.
const OPENER =
  /^\s*(?:(?:hi|hello|hey|hiya|greetings|good (?:morning|afternoon|evening))(?: there| all| team| everyone| folks)?|(?:a )?(?:quick|simple|short) question|(?:please|pls) help(?: me)?|sorry|excuse me|thanks|thank you)\s*[,!.:;]+\s*/i;
const CLOSER =
  /([^,.!?;\s])\s*[,.!?;]+\s*(?:(?:many )?thanks(?: a lot| so much| in advance)?|thank you(?: (?:so|very) much)?(?: in advance)?|cheers|please|pls|thx)\s*[.!?]*\s*$/i;

/**
 * The text without the conversational framing around it (openers before it, thanks or "please"
 * after it, each set off by punctuation), or the text as it is when nothing would be left.
 */
export function unframed(text: string): string {
  let t = text;
  for (let i = 0; i < 4; i++) {
    const next = t.replace(OPENER, '').replace(CLOSER, '$1');
    if (next === t) break;
    t = next;
  }
  return /[\p{L}\p{N}]/u.test(t) ? t : text;
}

/**
 * True when two prompts ask the same in the same words once the framing around them is set
 * aside: `sameText` (case, punctuation, contractions, number formatting aside) of their `unframed`
 * forms. "Hi, how do I reset my password?" and "How do I reset my password? Thanks!" are; a
 * different word anywhere else makes them differ.
 */
export function sameQuestion(a: string, b: string): boolean {
  if (sameText(a, b)) return true;
  const ua = unframed(a);
  const ub = unframed(b);
  // Without framing on either side the second comparison would repeat the first.
  return (ua !== a || ub !== b) && sameText(ua, ub);
}
