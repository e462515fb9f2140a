import type { Pool, PoolClient } from 'pg';

/** The statement a query sends, by kind: what the timeline's steps are made of. */
function kindOf(query: unknown): string {
  const text = (typeof query === 'string' ? query : ((query as { text?: unknown } | null)?.text ?? '')).toString().toLowerCase();
  if (text.includes('prepare transaction')) return 'prepare';
  if (text.startsWith('commit prepared')) return 'commit-prepared';
  if (text.startsWith('begin')) return 'begin';
  if (text.startsWith('update')) return 'update';
  return 'other';
}

type Event = [kind: string, sent: number, answered: number];

/**
 * Where the wall time of one transfer goes at concurrency 1: each statement's
 * send and answer times on the pools' connections, relative to the start of
 * the transfer, folded into steps (the time from one answer to the next send
 * is the client's own work on the critical path: JavaScript, and for the
 * decision the log's write and fdatasync). Medians over the transfers timed.
 * Concurrency 1 only: one transfer is timed at a time.
 */
export class Timeline {
  private events: Event[] = [];
  private started = 0;
  private readonly steps = new Map<string, number[]>();
  private readonly wrapped = new WeakSet<PoolClient>();

  /** Wraps `pool` so its clients' statements are timed. */
  watch(pool: Pool, label: string): Pool {
    const connect = pool.connect.bind(pool) as () => Promise<PoolClient>;
    (pool as unknown as { connect: () => Promise<PoolClient> }).connect = async () => {
      const client = await connect();
      if (!this.wrapped.has(client)) {
        this.wrapped.add(client);
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
          const event: Event = [`${kindOf(args[0])} ${label}`, performance.now() - this.started, NaN];
          this.events.push(event);
          const result = query(...args);
          if (result instanceof Promise) {
            const answered = () => {
              event[2] = performance.now() - this.started;
            };
            result.then(answered, answered);
          }
          return result;
        };
      }
      return client;
    };
    return pool;
  }

  start(): void {
    this.events = [];
    this.started = performance.now();
  }

  end(): void {
    const total = performance.now() - this.started;
    const of = (kind: string) => this.events.filter((e) => e[0].startsWith(kind));
    const one = (kind: string) => this.events.find((e) => e[0] === kind);
    const firstSent = (kind: string) => Math.min(...of(kind).map((e) => e[1]));
    const lastAnswered = (kind: string) => Math.max(...of(kind).map((e) => e[2]));
    const updates = of('update');
    if (of('begin').length !== 2 || updates.length !== 2 || of('prepare').length !== 2 || of('commit-prepared').length !== 2) return;
    const add = (step: string, ms: number) => {
      let list = this.steps.get(step);
      if (!list) this.steps.set(step, (list = []));
      list.push(ms);
    };
    add('0 start -> first BEGIN sent', firstSent('begin'));
    // Each database's own statement of a parallel pair: when the second went out, and each round trip.
    const pair = (kind: string, label: string, sentStep: string, step: string) => {
      const [a, b] = [one(`${kind} a`), one(`${kind} b`)];
      if (!a || !b) return;
      add(`${sentStep} ${label} b sent - ${label} a sent`, b[1] - a[1]);
      add(`${step}a ${label} a round trip`, a[2] - a[1]);
      add(`${step}b ${label} b round trip`, b[2] - b[1]);
    };
    pair('begin', 'BEGIN', '0a', '1');
    add('1 BEGINs (first sent -> last answered)', lastAnswered('begin') - firstSent('begin'));
    add('2 last BEGIN answered -> UPDATE a sent', updates[0][1] - lastAnswered('begin'));
    add('3 UPDATE a round trip', updates[0][2] - updates[0][1]);
    add('4 UPDATE a answered -> UPDATE b sent', updates[1][1] - updates[0][2]);
    add('5 UPDATE b round trip', updates[1][2] - updates[1][1]);
    add('6 UPDATE b answered -> first PREPARE sent', firstSent('prepare') - updates[1][2]);
    add('7 PREPAREs (first sent -> last answered)', lastAnswered('prepare') - firstSent('prepare'));
    pair('prepare', 'PREPARE', '7c', '7');
    add('8 last PREPARE answered -> first COMMIT PREPARED sent (decision)', firstSent('commit-prepared') - lastAnswered('prepare'));
    add('9 COMMIT PREPAREDs (first sent -> last answered)', lastAnswered('commit-prepared') - firstSent('commit-prepared'));
    add('10 last COMMIT PREPARED answered -> transfer returned', total - lastAnswered('commit-prepared'));
    add('total', total);
  }

  /** Median of each step, ms. */
  medians(): Array<[string, number]> {
    return [...this.steps.entries()].map(([step, list]) => {
      const sorted = [...list].sort((a, b) => a - b);
      return [step, sorted[Math.floor(sorted.length / 2)]];
    });
  }
}
