import fs from 'node:fs';

/** CPU time (ns, from the scheduler: exact, not in clock ticks) and voluntary context switches (sleeps) so far. */
export interface ThreadCpu {
  /** The main thread: the event loop, where JavaScript runs. */
  mainNs: number;
  /** Every other thread of the process: libuv's thread pool (file writes, fdatasync), V8's GC and compiler helpers. */
  otherNs: number;
  /** Times the main thread went to sleep (a wait in epoll or a futex): each is a wake-up later. */
  mainSleeps: number;
}

function schedNs(task: string): number {
  try {
    return Number(fs.readFileSync(`/proc/self/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0; // the thread ended meanwhile
  }
}

/**
 * The process's CPU split by thread, read from /proc (Linux only; zeros
 * elsewhere). process.cpuUsage() sums every thread; this tells the event
 * loop's share from the thread pool's, and counts the loop's sleeps.
 */
export function threadCpu(): ThreadCpu {
  if (process.platform !== 'linux') return { mainNs: 0, otherNs: 0, mainSleeps: 0 };
  const main = String(process.pid);
  let otherNs = 0;
  for (const task of fs.readdirSync('/proc/self/task')) if (task !== main) otherNs += schedNs(task);
  const status = fs.readFileSync(`/proc/self/task/${main}/status`, 'utf8');
  const sleeps = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(status);
  return { mainNs: schedNs(main), otherNs, mainSleeps: sleeps ? Number(sleeps[1]) : 0 };
}

/** `after` minus `before`. */
export function threadCpuSince(before: ThreadCpu, after: ThreadCpu = threadCpu()): ThreadCpu {
  return { mainNs: after.mainNs - before.mainNs, otherNs: after.otherNs - before.otherNs, mainSleeps: after.mainSleeps - before.mainSleeps };
}
