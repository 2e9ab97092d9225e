/**
 * SentencePiece (unigram) tokenizer of Universal Sentence Encoder Lite.
 *
 * A port of the tokenizer in `@tensorflow-models/universal-sentence-encoder` (Apache-2.0):
 * NFKC-normalise, prepend `▁` and replace spaces with `▁`, then pick the segmentation with the
 * best total piece score (Viterbi over a trie of the vocabulary). It must match that tokenizer
 * exactly, because the model was trained on its ids.
 */

/** `[piece, score]` pairs, as in the model's `vocab.json`. */
export type Vocabulary = ReadonlyArray<readonly [string, number]>;

const SEPARATOR = '\u2581';
/** `<unk>`-like, `<s>`, `</s>` and extra ids that never match input text. */
const RESERVED_SYMBOLS_COUNT = 6;
const UNK = 0;
/** Printable ASCII and ordinary whitespace only. */
const PRINTABLE_ASCII = /^[\x20-\x7e\t\n\r]*$/;
const WHITESPACE = /^\s$/u;
/**
 * A letter of a script other than Latin: USE-lite learned English, so such letters reach it as
 * <unk> or as single-letter pieces it attaches no meaning to (two unrelated Russian questions
 * score 0.93–0.98).
 */
const NON_LATIN_LETTER = /(?!\p{Script=Latin})\p{L}/u;
/** Characters whose loss changes what a text says: letters, digits, math and currency signs. */
const MEANINGFUL = /[\p{L}\p{N}\p{Sm}\p{Sc}]/u;

interface TrieNode {
  children: Map<string, TrieNode>;
  /** Vocabulary index of the piece ending here, -1 when none. */
  index: number;
}

export class UseTokenizer {
  private readonly root: TrieNode = { children: new Map(), index: -1 };
  private readonly pieceLengths: Int32Array;
  private readonly scores: Float64Array;
  /** Characters that are a piece on their own: a text made only of these has no `<unk>`. */
  private readonly singles = new Set<string>();
  /** Whether every printable ASCII character is such a piece (the fast path of `unknownCharacters`). */
  private readonly asciiCovered: boolean;

  constructor(vocabulary: Vocabulary) {
    this.pieceLengths = new Int32Array(vocabulary.length);
    this.scores = new Float64Array(vocabulary.length);
    for (let i = 0; i < vocabulary.length; i++) {
      const [piece, score] = vocabulary[i]!;
      const chars = Array.from(piece);
      this.pieceLengths[i] = chars.length;
      this.scores[i] = score;
      if (i < RESERVED_SYMBOLS_COUNT) continue;
      let node = this.root;
      for (const ch of chars) {
        let next = node.children.get(ch);
        if (!next) node.children.set(ch, (next = { children: new Map(), index: -1 }));
        node = next;
      }
      node.index = i;
      if (chars.length === 1) this.singles.add(chars[0]!);
    }
    let ascii = true;
    for (let c = 0x21; c < 0x7f; c++) if (!this.singles.has(String.fromCharCode(c))) ascii = false;
    this.asciiCovered = ascii;
  }

  /**
   * The characters of `text` (after NFKC normalisation) that no piece of the vocabulary covers:
   * the model sees each run of them as one `<unk>`, so two texts that differ only there get the
   * same vector. Whitespace is left out (the model sees it as a word break or not at all).
   */
  unknownCharacters(text: string): string[] {
    if (this.asciiCovered && PRINTABLE_ASCII.test(text)) return [];
    const normalized = text.normalize('NFKC');
    let allSingles = true;
    for (const ch of normalized) {
      if (!this.singles.has(ch) && !WHITESPACE.test(ch)) {
        allSingles = false;
        break;
      }
    }
    if (allSingles) return [];
    const { symbols, word } = this.segment(normalized);
    const unknown: string[] = [];
    for (let i = symbols.length; i > 0; ) {
      const id = word[i]!;
      if (id === UNK && !WHITESPACE.test(symbols[i - 1]!)) unknown.push(symbols[i - 1]!);
      i -= id === UNK ? 1 : this.pieceLengths[id]!;
    }
    return unknown.reverse();
  }

  /**
   * Whether USE-lite can tell this text from others (see `UseEmbedder.represents`): no letter of
   * a script other than Latin, and no letter, digit, math or currency sign outside the vocabulary.
   */
  represents(text: string): boolean {
    if (NON_LATIN_LETTER.test(text)) return false;
    for (const ch of this.unknownCharacters(text)) if (MEANINGFUL.test(ch)) return false;
    return true;
  }

  /** Token ids of one text (consecutive unknown characters merged into one `<unk>`). */
  encode(text: string): number[] {
    const normalized = text.normalize('NFKC');
    if (normalized.length === 0) return [];
    const { symbols, word } = this.segment(normalized);
    const n = symbols.length;
    const ids: number[] = [];
    let i = n;
    while (i > 0) {
      const id = word[i]!;
      ids.push(id);
      i -= id === UNK ? 1 : this.pieceLengths[id]!;
    }
    ids.reverse();
    const merged: number[] = [];
    for (let k = 0; k < ids.length; k++) {
      if (ids[k] === UNK && k > 0 && ids[k - 1] === UNK) continue;
      merged.push(ids[k]!);
    }
    return merged;
  }

  /** The best segmentation of a normalised text: `word[i]` is the last piece of `symbols[0, i)`. */
  private segment(normalized: string): { symbols: string[]; word: Int32Array } {
    const symbols = Array.from(SEPARATOR + normalized.replace(/ /g, SEPARATOR));
    const n = symbols.length;
    // best[i]: best score of a segmentation of symbols[0, i); word[i]: last piece of it.
    const best = new Float64Array(n + 1);
    const word = new Int32Array(n + 1); // 0 = <unk> (one character)
    for (let start = 0; start < n; start++) {
      // A position no piece reaches keeps score 0 and word <unk>, exactly as in the reference.
      let node: TrieNode | undefined = this.root;
      for (let end = start; end < n && node; end++) {
        node = node.children.get(symbols[end]!);
        if (!node) break;
        if (node.index < 0) continue;
        const score = this.scores[node.index]! + best[start]!;
        const e = end + 1;
        // The reference keeps a candidate when the slot is still 0 or the score is >= (ties: later start wins).
        if (best[e] === 0 || score >= best[e]!) {
          best[e] = score;
          word[e] = node.index;
        }
      }
    }
    return { symbols, word };
  }
}
