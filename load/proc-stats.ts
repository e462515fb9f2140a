import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

let clockTicks: number | undefined;

/** Kernel clock ticks per second (USER_HZ), for /proc/<pid>/stat CPU times. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Resident memory of a process now and at its peak (VmRSS, VmHWM), KiB; undefined once it is gone. */
export function readMemory(pid: number): { rssKiB: number; hwmKiB: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

/** User + system CPU time the process has used, ms. */
export function readCpuMs(pid: number): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th of them.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond();
}

export function loadAverage(): number {
  try {
    return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

/** The file log's directory: total bytes, and the snapshot (its name changes with each compaction). */
export interface LogDirStats {
  bytes: number;
  files: number;
  segments: number;
  snapshot?: { name: string; bytes: number };
  /** A snapshot is being written (`*.snap.tmp` present). */
  compacting: boolean;
}

export function readLogDir(dir: string): LogDirStats {
  const out: LogDirStats = { bytes: 0, files: 0, segments: 0, compacting: false };
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    let bytes: number;
    try {
      bytes = fs.statSync(path.join(dir, name)).size;
    } catch {
      continue; // Deleted by a compaction between the listing and the stat.
    }
    out.bytes += bytes;
    out.files += 1;
    if (name.startsWith('segment-')) out.segments += 1;
    if (name.endsWith('.snap.tmp')) out.compacting = true;
    else if (name.endsWith('.snap') && (!out.snapshot || name > out.snapshot.name)) out.snapshot = { name, bytes };
  }
  return out;
}

/**
 * The kernel's listen-queue counters (TcpExt ListenOverflows, ListenDrops)
 * for this network namespace: SYNs dropped because an accept queue was
 * full. Machine-wide, so other programs' drops count too.
 */
export function readListenDrops(): { overflows: number; drops: number } | undefined {
  let lines: string[];
  try {
    lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n');
  } catch {
    return undefined;
  }
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (!lines[i].startsWith('TcpExt:')) continue;
    const names = lines[i].split(/\s+/);
    const values = lines[i + 1].split(/\s+/);
    const get = (n: string) => Number(values[names.indexOf(n)]);
    return { overflows: get('ListenOverflows'), drops: get('ListenDrops') };
  }
  return undefined;
}
