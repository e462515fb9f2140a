import { Pool } from 'pg';
import { Coordinator } from '../../../coordinator/in-process/coordinator';
import { createDecisionLog } from '../../../coordinator/log/create-decision-log';
import { PostgresParticipant } from '../../../coordinator/participants/postgres/postgres-participant';
import type { PostgresPool, PostgresPoolClient } from '../../../participant-sdk/src/postgres';
import { codeOf, emit, serveCommands } from './worker-io';

/**
 * An application running the in-process coordinator (test/safety) on a
 * shared decision log. `hold` begins a transaction whose only branch adds 1
 * to account 1 and waits for `finish`; then it commits (one phase). With
 * `pause-commit` armed, that COMMIT waits for `release-commit` before it
 * reaches the database: a process stopped between its lease check and its
 * COMMIT. Env: LOG, DATABASE_URL, NAME, GROUP, LEASE_MS.
 */
async function main(): Promise<void> {
  const env = process.env as Record<string, string>;
  const pg = new Pool({ connectionString: env.DATABASE_URL, max: 4 });
  pg.on('error', () => undefined);
  let commitGate: Promise<void> | undefined;
  let releaseCommit: (() => void) | undefined;
  const pool: PostgresPool = {
    on: (event, listener) => pg.on(event, listener),
    removeListener: (event, listener) => pg.removeListener(event, listener),
    async connect(): Promise<PostgresPoolClient> {
      const client = await pg.connect();
      return {
        query: async (text, values) => {
          if (commitGate && typeof text === 'string' && /;\s*COMMIT$/.test(text)) {
            emit('commit-pending');
            await commitGate;
          }
          return client.query(text as string, values as unknown[]) as never;
        },
        release: (err) => client.release(err),
        on: (event, listener) => client.on(event, listener),
        removeListener: (event, listener) => client.removeListener(event, listener),
      };
    },
  };
  const participant = new PostgresParticipant({ name: 'db', pool, connectionLossWaitMs: 3_000 });
  await participant.start();
  const coordinator = await Coordinator.start({
    log: createDecisionLog(env.LOG, { allowVolatile: true }),
    databases: [participant],
    engine: { sweepIntervalMs: 0, commitWaitMs: 10_000, phaseTwoMaxDelayMs: 200 },
    instance: { name: env.NAME, group: env.GROUP, leaseMs: Number(env.LEASE_MS) },
  });
  emit('ready', { pid: process.pid });
  let finish: (() => void) | undefined;
  serveCommands(
    async (command) => {
      switch (command.cmd) {
        case 'hold': {
          const finished = new Promise<void>((resolve) => (finish = resolve));
          let txId = '';
          coordinator
            .transaction(
              async (tx) => {
                txId = tx.id;
                await tx.db('db').query('update accounts set balance = balance + 1 where id = 1');
                emit('held', { txId });
                await finished;
              },
              { timeoutMs: 120_000 },
            )
            .then(
              () => emit('done', { txId, result: 'committed' }),
              (e: unknown) => emit('done', { txId, result: codeOf(e) }),
            );
          return;
        }
        case 'finish':
          finish?.();
          return;
        case 'pause-commit':
          commitGate = new Promise<void>((resolve) => (releaseCommit = resolve));
          return;
        case 'release-commit':
          releaseCommit?.();
          return;
      }
    },
    async () => {
      await coordinator.close();
      await participant.close();
      await pg.end();
    },
  );
}

void main().catch((e: unknown) => {
  emit('failed', { message: e instanceof Error ? e.stack ?? e.message : String(e) });
  process.exit(1);
});
