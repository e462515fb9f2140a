/** Distinct strings a pool keeps at most; past that it starts afresh. */
const MAX_POOLED = 4_096;
/** Longer strings are kept as they come: names and URLs worth sharing are short. */
const MAX_POOLED_LENGTH = 256;

/**
 * One copy of each participant name and URL that branches enlist with. Each
 * request's JSON body brings its own copy of the same few strings, and every
 * running transaction keeps them in its branches (in the engine and in the
 * decision log): at 50,000 running transactions with two branches, about
 * 7 MiB of copies of a handful of strings. Bounded in count and length, so a
 * caller sending ever new strings cannot grow it; when full it starts afresh
 * (strings still in use stay referenced by their branches), so names and URLs
 * that change over the process's life (pods moving) are still shared.
 */
export class StringPool {
  private readonly strings = new Map<string, string>();

  intern(s: string): string {
    const known = this.strings.get(s);
    if (known !== undefined) return known;
    if (s.length > MAX_POOLED_LENGTH) return s;
    if (this.strings.size >= MAX_POOLED) this.strings.clear();
    this.strings.set(s, s);
    return s;
  }
}
