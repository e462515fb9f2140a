import { spawn } from 'node:child_process';
import fs from 'node:fs';

// Reads the manifest only once this process is gone: normal teardown removes
// the manifest first, so then the shell finds nothing and just exits.
const SCRIPT = `
while kill -0 "$1" 2>/dev/null; do sleep 1; done
[ -f "$2" ] || exit 0
while read -r kind arg; do
  case "$kind" in
    pid) kill -TERM "$arg" 2>/dev/null ;;
    pgdata) pid=$(head -n 1 "$arg/postmaster.pid" 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null ;;
  esac
done < "$2"
sleep 2
while read -r kind arg; do [ "$kind" = dir ] && rm -rf "$arg"; done < "$2"
rm -f "$2"
`;

/**
 * Last-resort cleanup for when this process dies without running its own
 * teardown (SIGKILL; `tsx` kills a child that is slow to acknowledge Ctrl-C):
 * a detached shell that waits for this process to exit, then stops the
 * processes and PostgreSQL servers listed in a manifest file and removes the
 * listed directories. Everything is listed as soon as it exists.
 *
 * @example
 * const reaper = Reaper.start('/tmp/twopc-demo-x/reaper.list');
 * reaper.add('pid', child.pid);
 * // ... normal teardown done:
 * reaper.disarm();
 */
export class Reaper {
  private constructor(private readonly manifest: string) {}

  static start(manifest: string): Reaper {
    fs.writeFileSync(manifest, '');
    const child = spawn('sh', ['-c', SCRIPT, 'twopc-reaper', String(process.pid), manifest], { detached: true, stdio: 'ignore' });
    child.unref();
    return new Reaper(manifest);
  }

  /** A process to SIGTERM, a PostgreSQL data directory whose server to stop, or a directory to remove. */
  add(kind: 'pid' | 'pgdata' | 'dir', value: string | number | undefined): void {
    if (value === undefined || String(value).includes('\n')) return;
    fs.appendFileSync(this.manifest, `${kind} ${value}\n`);
  }

  /** Teardown ran: the shell is to do nothing. */
  disarm(): void {
    fs.rmSync(this.manifest, { force: true });
  }
}
