/** What one scrape of `/metrics` (Prometheus text format) holds. */
export interface Scrape {
  /** Each sample's value by its series as exposed: `name` or `name{label="value",…}`. */
  samples: Map<string, number>;
  /** Each metric family's type (`counter`, `gauge`, `histogram`, `summary`) by its name. */
  families: Map<string, string>;
}

export function parseMetricsText(text: string): Scrape {
  const samples = new Map<string, number>();
  const families = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1], type[2]);
    if (line === '' || line.startsWith('#')) continue;
    // prom-client writes no timestamps: the value is the last field.
    const cut = line.lastIndexOf(' ');
    const raw = line.slice(cut + 1);
    samples.set(line.slice(0, cut), raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw));
  }
  return { samples, families };
}

/** Every sample name a scrape could show, observed or not: a histogram's `_bucket`, `_sum` and `_count`, a summary's `_sum` and `_count`. */
export function exposedNames(scrape: Scrape): Set<string> {
  const names = new Set<string>();
  for (const [family, type] of scrape.families) {
    names.add(family);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(family + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(family + suffix);
  }
  for (const series of scrape.samples.keys()) names.add(series.replace(/\{.*$/, ''));
  return names;
}

export async function scrapeMetrics(base: string): Promise<Scrape> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetricsText(await res.text());
}
