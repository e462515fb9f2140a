import fs from 'node:fs';
import { machineTicks } from './cpu-meter';

// /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second.
const TICK_MS = 10;

/** What a process has used so far: CPU in user and kernel mode (ms), and context switches. */
export interface ProcessUsage {
  userMs: number;
  systemMs: number;
  /** Waits (mostly for the next request or answer to arrive). */
  voluntarySwitches: number;
  involuntarySwitches: number;
}

/** The process's usage so far; undefined off Linux or once it is gone. */
export function processUsage(pid: number | undefined): ProcessUsage | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 (state): utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const switches = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return {
      userMs: Number(fields[11]) * TICK_MS,
      systemMs: Number(fields[12]) * TICK_MS,
      voluntarySwitches: switches('voluntary_ctxt_switches'),
      involuntarySwitches: switches('nonvoluntary_ctxt_switches'),
    };
  } catch {
    return undefined;
  }
}

/** `total` plus the usage between `before` and `after`. */
function addSpan(total: ProcessUsage | undefined, before: ProcessUsage, after: ProcessUsage): ProcessUsage {
  const t = total ?? { userMs: 0, systemMs: 0, voluntarySwitches: 0, involuntarySwitches: 0 };
  return {
    userMs: t.userMs + after.userMs - before.userMs,
    systemMs: t.systemMs + after.systemMs - before.systemMs,
    voluntarySwitches: t.voluntarySwitches + after.voluntarySwitches - before.voluntarySwitches,
    involuntarySwitches: t.involuntarySwitches + after.involuntarySwitches - before.involuntarySwitches,
  };
}

/** Busy CPU of the whole machine so far, ms summed over cores; undefined off Linux. */
export function machineBusyMs(): number | undefined {
  const ticks = machineTicks();
  return ticks && ticks.busy * TICK_MS;
}

interface Mark {
  processes: Map<string, ProcessUsage | undefined>;
  machine: number | undefined;
}

/**
 * CPU used per transfer by each of a mode's processes, and by the whole
 * machine, over the periods it is switched on (a mode's measured runs: the
 * other modes run in between). On this 2-core machine that tells which
 * process a transfer's CPU goes to.
 */
export class ProcessCpuMeter {
  private readonly used = new Map<string, ProcessUsage>();
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
        if (before !== undefined && after !== undefined) this.used.set(label, addSpan(this.used.get(label), before, after));
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

  /** One line per process, and one for the machine: CPU ms and context switches per transfer while on. */
  notes(): string[] {
    if (this.counted === 0) return [];
    const n = this.counted;
    const per = (ms: number) => `${(ms / n).toFixed(3)} ms`;
    const lines = [...this.used].map(
      ([label, u]) =>
        `CPU per transfer, ${label}: ${per(u.userMs + u.systemMs)} (user ${per(u.userMs)}, kernel ${per(u.systemMs)}); ` +
        `context switches per transfer: ${(u.voluntarySwitches / n).toFixed(1)} waits, ${(u.involuntarySwitches / n).toFixed(1)} preempted`,
    );
    const known = [...this.used.values()].reduce((a, u) => a + u.userMs + u.systemMs, 0);
    if (this.machineUsed > 0) {
      lines.push(`CPU per transfer, whole machine: ${per(this.machineUsed)} (processes above: ${per(known)}; the rest: PostgreSQL, the kernel, anything else running)`);
    }
    return lines;
  }

  private sample(): Mark {
    return { processes: new Map([...this.pids].map(([label, pid]) => [label, processUsage(pid)])), machine: machineBusyMs() };
  }
}
