/** Distinct strings a pool keeps at most; past that it hands strings back as they are. */
const MAX_POOLED = 4_096;

/**
 * One copy of each participant name and URL that branches enlist with. Each
 * request's JSON body brings its own copy of the same few strings, and every
 * running transaction keeps them in its branches (in the engine and in the
 * decision log): at 50,000 running transactions with two branches, about
 * 7 MiB of copies of a handful of strings. Bounded, so a caller sending ever
 * new strings cannot grow it: those are kept as they come.
 */
export class StringPool {
  private readonly strings = new Map<string, string>();

  intern(s: string): string {
    const known = this.strings.get(s);
    if (known !== undefined) return known;
    if (this.strings.size < MAX_POOLED) this.strings.set(s, s);
    return s;
  }
}
