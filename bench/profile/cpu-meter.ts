import fs from 'node:fs';
import { postgresCpuMs } from './postgres-cpu';

export interface CpuSample {
  /** This process (the bench driver and, in the engine mode, the engine). */
  processMs: number;
  /** Whole machine, busy / total, from /proc/stat; undefined where there is none. */
  machineBusy?: number;
  /** The bench's PostgreSQL servers (every process of theirs); undefined off Linux. */
  postgresMs?: number;
}

interface Mark {
  usage: NodeJS.CpuUsage;
  machine?: { busy: number; total: number };
  postgres?: number;
}

/** CPU time of the whole machine so far, in clock ticks (all cores); undefined where there is no /proc/stat. */
export function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.reduce((a, b) => a + b, 0);
    // idle + iowait are not busy.
    return { busy: total - cpu[3] - (cpu[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/**
 * CPU spent during a measured run: on this 2-core machine the two PostgreSQL
 * clusters and Node share the cores, so CPU per transfer in Node and how busy
 * the machine was tell whether a mode is slower for round trips or for CPU.
 */
export function cpuMark(postgresDataDirs: readonly string[] = []): () => CpuSample {
  const start: Mark = { usage: process.cpuUsage(), machine: machineTicks(), postgres: postgresCpuMs(postgresDataDirs) };
  return () => {
    const usage = process.cpuUsage(start.usage);
    const end = machineTicks();
    const postgresEnd = postgresCpuMs(postgresDataDirs);
    const machineBusy = start.machine && end && end.total > start.machine.total ? (end.busy - start.machine.busy) / (end.total - start.machine.total) : undefined;
    const postgresMs = start.postgres !== undefined && postgresEnd !== undefined ? postgresEnd - start.postgres : undefined;
    return { processMs: (usage.user + usage.system) / 1000, ...(machineBusy === undefined ? {} : { machineBusy }), ...(postgresMs === undefined ? {} : { postgresMs }) };
  };
}
