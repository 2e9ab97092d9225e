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

interface TrieNode {
  children: Map<string, TrieNode>;
  /** Vocabulary index of the piece ending here, -1 when none. */
  index: number;
}

export class UseTokenizer {
  private readonly root: TrieNode = { children: new Map(), index: -1 };
  private readonly pieceLengths: Int32Array;
  private readonly scores: Float64Array;

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
    }
  }

  /** Token ids of one text (consecutive unknown characters merged into one `<unk>`). */
  encode(text: string): number[] {
    const normalized = text.normalize('NFKC');
    if (normalized.length === 0) return [];
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
}
