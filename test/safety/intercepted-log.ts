import type { DecisionLog } from '../../coordinator/engine/ports/decision-log';

type Method = 'append' | 'decide' | 'get' | 'unfinished' | 'history' | 'makeDurable';
type Fn<K extends Method> = NonNullable<DecisionLog[K]> extends (...args: infer A) => infer R ? (next: (...args: A) => R, ...args: A) => R : never;

/** Replacements for some of a log's calls; each gets the real call as `next`. */
export type Intercepts = { [K in Method]?: Fn<K> };

/**
 * A decision log whose chosen calls go through `intercepts` (to pause one at
 * a chosen point, see `Gate`); everything else is the real store's.
 */
export function interceptedLog(inner: DecisionLog, intercepts: Intercepts): DecisionLog {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      const intercept = (intercepts as Record<string | symbol, ((next: unknown, ...args: unknown[]) => unknown) | undefined>)[prop];
      if (typeof value !== 'function') return value;
      const next = (value as (...args: unknown[]) => unknown).bind(target);
      return intercept ? (...args: unknown[]) => intercept(next, ...args) : next;
    },
  });
}

/**
 * A point a call waits at: `reached` resolves when the first caller is
 * there, which then waits until `open()`.
 */
export class Gate {
  private arrive!: () => void;
  private release!: () => void;
  readonly reached = new Promise<void>((r) => (this.arrive = r));
  private readonly opened = new Promise<void>((r) => (this.release = r));

  /** Waits here (after telling `reached`) until the gate is opened. */
  async pass(): Promise<void> {
    this.arrive();
    await this.opened;
  }

  open(): void {
    this.release();
  }
}
