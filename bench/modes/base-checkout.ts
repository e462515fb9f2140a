import path from 'node:path';
import type { EngineImpl } from './engine';

/**
 * The engine's classes from another checkout of twopc (BENCH_BASE_DIR, e.g.
 * `git archive <commit> | tar -x -C /tmp/base` with node_modules linked in),
 * so `engine` and `engine-base` run interleaved in one bench run: a
 * before/after of a change that no switch can take back.
 */
export async function baseCheckout(): Promise<EngineImpl> {
  const dir = baseDir('engine-base');
  const load = async <T>(file: string): Promise<T> => (await import(path.resolve(dir, file))) as T;
  const [{ Coordinator }, { FileDecisionLog }, { PostgresParticipant }] = await Promise.all([
    load<Pick<EngineImpl, 'Coordinator'>>('coordinator/in-process/coordinator.ts'),
    load<Pick<EngineImpl, 'FileDecisionLog'>>('coordinator/log/file/file-decision-log.ts'),
    load<Pick<EngineImpl, 'PostgresParticipant'>>('coordinator/participants/postgres/postgres-participant.ts'),
  ]);
  return { Coordinator, FileDecisionLog, PostgresParticipant };
}

/** BENCH_BASE_DIR, resolved: the checkout a `*-base` mode runs (its processes, for the services modes). */
export function baseDir(mode: string): string {
  const dir = process.env.BENCH_BASE_DIR;
  if (!dir) throw new Error(`${mode} needs BENCH_BASE_DIR: the directory of the checkout to compare against`);
  return path.resolve(dir);
}
