import { ChildProcess, fork } from 'node:child_process';
import path from 'node:path';

/** The repository root: the coordinator's build and its sources are found from it. */
export const REPO_ROOT = path.resolve(__dirname, '..');
// Run from TypeScript sources through tsx (npm run load, jest), or compiled.
const EXT = path.extname(__filename);

/**
 * Forks one of load/'s own programs (a worker, the stubs) with an IPC
 * channel. `runDir` goes on its command line: the reaper kills only
 * processes whose command line names this run's directory.
 */
export function forkLoadProgram(name: string, runDir: string): ChildProcess {
  return fork(path.join(__dirname, `${name}${EXT}`), [`--run-dir=${runDir}`], {
    cwd: REPO_ROOT,
    execArgv: EXT === '.ts' ? ['--import', 'tsx'] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
}

/** Resolves with the first message `accept` returns a value for; rejects if the child exits first or after `timeoutMs`. */
export function nextMessage<M, T>(child: ChildProcess, label: string, accept: (m: M) => T | undefined, timeoutMs = 60_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: M) => {
      const v = accept(m);
      if (v === undefined) return;
      done();
      resolve(v);
    };
    const onExit = (code: number | null, signal: string | null) => {
      done();
      reject(new Error(`${label} exited (${signal ?? code})`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${label}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
export async function stopChild(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
