import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeProcess, NodeProcessSpec } from '../coordinator/demo/node-process';
import { Reaper } from '../coordinator/demo/reaper';

/**
 * The processes a mode runs beside the bench (a coordinator, services):
 * stopped together, newest first, when the mode closes or its setup fails,
 * and by a reaper if the bench itself is killed outright (the bench's own
 * reaper only knows its PostgreSQL clusters).
 *
 * @example
 * const processes = ModeProcesses.create();
 * const { proc } = await processes.start({ label: 'svc', entry: 'bench/http-hop-stub', env, ready: /"ready":true/ });
 * await processes.stopAll();
 */
export class ModeProcesses {
  private readonly procs: NodeProcess[] = [];

  private constructor(
    private readonly dir: string,
    private readonly reaper: Reaper,
  ) {}

  static create(): ModeProcesses {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-bench-procs-'));
    const reaper = Reaper.start(path.join(dir, 'reaper.list'));
    reaper.add('dir', dir);
    return new ModeProcesses(dir, reaper);
  }

  async start(spec: NodeProcessSpec): Promise<{ proc: NodeProcess; match: RegExpMatchArray }> {
    const started = await NodeProcess.start(spec);
    this.adopt(started.proc);
    return started;
  }

  /** A process started elsewhere (e.g. by startCoordinator), to stop with the others. */
  adopt(proc: NodeProcess): void {
    this.procs.push(proc);
    this.reaper.add('pid', proc.pid);
  }

  /** Label → pid of every process, for CPU metering. */
  pids(): Map<string, number | undefined> {
    return new Map(this.procs.map((p) => [p.label, p.pid]));
  }

  /** Stops every process, newest first (services before the coordinator they call), then drops the reaper. */
  async stopAll(): Promise<void> {
    for (const proc of [...this.procs].reverse()) await proc.stop().catch(() => undefined);
    this.reaper.disarm();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
