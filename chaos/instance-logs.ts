import fs from 'node:fs';

/** What one coordinator instance's log (every incarnation) says about leases. */
export interface InstanceLogTally {
  name: string;
  /** "took over the transactions of an instance whose lease expired": another instance's (or an earlier process's) dead lease. */
  tookOverExpired: number;
  /** "took over the previous process of this instance": a restart under the same name. */
  tookOverRestart: number;
  /** Lease lost: taken over while this process was paused or cut off, or not renewed in time. */
  fenced: number;
  /** Leases registered (one per start, one more after each fencing). */
  registered: number;
}

const EXPIRED = '"msg":"took over the transactions of an instance whose lease expired"';
const RESTART = '"msg":"took over the previous process of this instance"';
const REGISTERED = '"msg":"coordinator lease registered"';
// The two messages of Membership.renew when this process lost its lease; both say "fenced".
const FENCED = /"msg":"lease [^"]*fenced[^"]*"/;

/** Counts the lease events in an instance's log file (a missing file counts nothing). */
export function tallyInstanceLog(name: string, file: string): InstanceLogTally {
  const tally: InstanceLogTally = { name, tookOverExpired: 0, tookOverRestart: 0, fenced: 0, registered: 0 };
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return tally;
  }
  for (const line of text.split('\n')) {
    if (line.includes(EXPIRED)) tally.tookOverExpired += 1;
    else if (line.includes(RESTART)) tally.tookOverRestart += 1;
    else if (line.includes(REGISTERED)) tally.registered += 1;
    else if (FENCED.test(line)) tally.fenced += 1;
  }
  return tally;
}
