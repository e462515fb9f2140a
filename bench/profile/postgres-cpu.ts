import fs from 'node:fs';
import path from 'node:path';

// /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second.
const TICK_MS = 10;

/**
 * CPU used so far (ms, user + kernel) by the PostgreSQL servers of these data
 * directories: each postmaster, its children (backends, WAL writer,
 * checkpointer...) and those of them that exited. Other agents' servers on a shared machine are not counted,
 * so per transfer it holds up under load where throughput does not.
 * Undefined off Linux.
 */
export function postgresCpuMs(dataDirs: readonly string[]): number | undefined {
  const postmasters = new Set<string>();
  for (const dir of dataDirs) {
    try {
      postmasters.add(fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0].trim());
    } catch {
      // Not running (or not yet): counts nothing.
    }
  }
  if (postmasters.size === 0) return undefined;
  let ticks = 0;
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // After the command name (which may hold spaces): state, ppid, ...; utime and stime are fields 14
      // and 15, cutime and cstime (its exited children's, once reaped) 16 and 17. A backend that exits
      // between two readings moves from the children's sum into the postmaster's cutime/cstime.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (postmasters.has(pid)) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      else if (postmasters.has(fields[1])) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone meanwhile.
    }
  }
  return ticks * TICK_MS;
}
