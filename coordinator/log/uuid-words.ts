// A canonical lower-case UUID (8-4-4-4-12 hex digits) as four 32-bit words, and back: the 16 bytes
// the OutcomeTable keys its typed arrays with. Only ids that format back to the same text are parsed,
// so an id read from the table is always the string that was stored.

const DIGITS = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
// The text position of each of the 32 hex digits.
const POSITIONS = Array.from({ length: 36 }, (_, i) => i).filter((i) => i !== 8 && i !== 13 && i !== 18 && i !== 23);
// Scratch for formatUuid: the hyphens stay, the digits are overwritten.
const codes: number[] = Array.from({ length: 36 }, () => 45);

/** Writes the four words of `id` to out[0..3]; false (out left partly written) when it is not a canonical lower-case UUID. */
export function parseUuid(id: string, out: Int32Array): boolean {
  if (id.length !== 36) return false;
  let word = 0;
  let digits = 0;
  let k = 0;
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
      continue;
    }
    let v: number;
    if (c >= 48 && c <= 57) v = c - 48;
    else if (c >= 97 && c <= 102) v = c - 87;
    else return false;
    word = (word << 4) | v;
    if (++digits === 8) {
      out[k++] = word;
      word = 0;
      digits = 0;
    }
  }
  return true;
}

/** The canonical text of the UUID whose words are words[o..o+3]: one flat string (a concatenation would build a rope of 20 parts). */
export function formatUuid(words: Int32Array, o: number): string {
  for (let j = 0; j < 32; j++) codes[POSITIONS[j]] = DIGITS[(words[o + (j >> 3)] >>> (28 - 4 * (j & 7))) & 15];
  return String.fromCharCode.apply(null, codes);
}

/** A 32-bit hash of four words (murmur3-style mixing: a v7 UUID's leading words are a clock, so every bit is mixed in). */
export function hashWords(k0: number, k1: number, k2: number, k3: number): number {
  let h = Math.imul(k0 ^ 0x9e3779b9, 0xcc9e2d51);
  h = Math.imul(h ^ (h >>> 15) ^ k1, 0x1b873593);
  h = Math.imul(h ^ (h >>> 13) ^ k2, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16) ^ k3, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
