import fs from 'node:fs';
import { machineTicks } from './cpu-meter';

// /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second.
const TICK_MS = 10;

/** CPU (user + system) a process has used so far, ms; undefined off Linux or once it is gone. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 (state): utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Busy CPU of the whole machine so far, ms summed over cores; undefined off Linux. */
export function machineBusyMs(): number | undefined {
  const ticks = machineTicks();
  return ticks && ticks.busy * TICK_MS;
}

interface Mark {
  processes: Map<string, number | undefined>;
  machine: number | undefined;
}

/**
 * CPU used per transfer by each of a mode's processes, and by the whole
 * machine, over the periods it is switched on (a mode's measured runs: the
 * other modes run in between). On this 2-core machine that tells which
 * process a transfer's CPU goes to.
 */
export class ProcessCpuMeter {
  private readonly used = new Map<string, number>();
  private machineUsed = 0;
  private mark?: Mark;
  private counted = 0;

  constructor(private readonly pids: ReadonlyMap<string, number | undefined>) {}

  /** Switches metering on or off; may be called with the current state as often as wanted. */
  setOn(on: boolean): void {
    if (on && !this.mark) this.mark = this.sample();
    if (!on && this.mark) {
      const now = this.sample();
      for (const [label, before] of this.mark.processes) {
        const after = now.processes.get(label);
        if (before !== undefined && after !== undefined) this.used.set(label, (this.used.get(label) ?? 0) + after - before);
      }
      if (this.mark.machine !== undefined && now.machine !== undefined) this.machineUsed += now.machine - this.mark.machine;
      this.mark = undefined;
    }
  }

  get on(): boolean {
    return this.mark !== undefined;
  }

  /** A transfer completed while on. */
  count(): void {
    this.counted += 1;
  }

  /** One line per process, and one for the machine: CPU ms per transfer while on. */
  notes(): string[] {
    if (this.counted === 0) return [];
    const per = (ms: number) => `${(ms / this.counted).toFixed(3)} ms`;
    const lines = [...this.used].map(([label, ms]) => `CPU per transfer, ${label}: ${per(ms)}`);
    const known = [...this.used.values()].reduce((a, b) => a + b, 0);
    if (this.machineUsed > 0) {
      lines.push(`CPU per transfer, whole machine: ${per(this.machineUsed)} (processes above: ${per(known)}; the rest: PostgreSQL, the kernel, anything else running)`);
    }
    return lines;
  }

  private sample(): Mark {
    return { processes: new Map([...this.pids].map(([label, pid]) => [label, processCpuMs(pid)])), machine: machineBusyMs() };
  }
}
