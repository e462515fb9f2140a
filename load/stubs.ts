import type { ChildProcess } from 'node:child_process';
import { forkLoadProgram, nextMessage, stopChild } from './child-processes';
import { STUB_BASE_PATH } from './stub-participant';
import type { FromStubs, StubCounts, StubFaults, StubSpec, ToStubs } from './stub-protocol';

/**
 * The stub participants of a run (one forked process serving them all, each
 * on its own port): their URLs, per-second counts, fault switches.
 *
 * @example
 * const stubs = await Stubs.start(runDir, secret, [{ name: 'stub-a', faults: NO_FAULTS, verify: true }]);
 * stubs.url('stub-a'); // http://127.0.0.1:40123/twopc
 */
export class Stubs {
  private readonly listeners: Array<(second: number, stubs: StubCounts[]) => void> = [];

  private constructor(
    private readonly child: ChildProcess,
    private readonly ports: Record<string, number>,
  ) {
    child.on('message', (m: FromStubs) => {
      if (m.type === 'tick') for (const l of this.listeners) l(m.second, m.stubs);
    });
  }

  static async start(runDir: string, secret: string, specs: StubSpec[]): Promise<Stubs> {
    const child = forkLoadProgram('stub-process', runDir);
    try {
      const listening = nextMessage(child, 'stub participants', (m: FromStubs) => (m.type === 'listening' ? m.ports : undefined));
      child.send({ type: 'start', secret, specs } satisfies ToStubs);
      return new Stubs(child, await listening);
    } catch (e) {
      await stopChild(child);
      throw e;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get names(): string[] {
    return Object.keys(this.ports);
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.ports[name]}${STUB_BASE_PATH}`;
  }

  /** `127.0.0.1:<port>` of every stub: what must not reach API clients. */
  addresses(): string[] {
    return Object.values(this.ports).map((p) => `127.0.0.1:${p}`);
  }

  onTick(listener: (second: number, stubs: StubCounts[]) => void): void {
    this.listeners.push(listener);
  }

  setFaults(name: string, faults: StubFaults): void {
    this.child.send({ type: 'faults', name, faults } satisfies ToStubs);
  }

  async totals(): Promise<StubCounts[]> {
    const answer = nextMessage(this.child, 'stub participants', (m: FromStubs) => (m.type === 'totals' ? m.stubs : undefined), 10_000);
    this.child.send({ type: 'totals' } satisfies ToStubs);
    return answer;
  }

  close(): Promise<void> {
    return stopChild(this.child);
  }
}
