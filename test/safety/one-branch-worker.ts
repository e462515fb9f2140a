/**
 * A child process for the safety tests: an application that embeds the
 * in-process coordinator on a file log (LOG_DIR) and one PostgreSQL database
 * (PG_URL, named `ledger`), and runs COUNT one-branch transactions, each
 * inserting its own id into `items` (one-phase commits). Each transaction's id
 * is printed as a JSON line before it commits (`begun`) and after (`committed`),
 * so a parent that armed TWOPC_CRASH_AT knows which one the crash stranded.
 */
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';

async function main(): Promise<void> {
  const env = process.env;
  const pool = new Pool({ connectionString: env.PG_URL, max: 4 });
  pool.on('error', () => undefined);
  const ledger = new PostgresParticipant({ name: 'ledger', pool });
  await ledger.start();
  const coordinator = await Coordinator.start({
    log: new FileDecisionLog({ dir: env.LOG_DIR! }),
    databases: [ledger],
    engine: { gidPrefix: env.GID_PREFIX ?? 'twopc', sweepIntervalMs: 0, phaseTwoBaseDelayMs: 10, phaseTwoMaxDelayMs: 100 },
  });
  for (let i = 0; i < Number(env.COUNT ?? 1); i++) {
    await coordinator.transaction(async (tx) => {
      process.stdout.write(`${JSON.stringify({ begun: tx.id })}\n`);
      await tx.db('ledger').query('insert into items (id) values ($1)', [tx.id]);
    });
    process.stdout.write(`${JSON.stringify({ committed: i })}\n`);
  }
  await coordinator.close();
  await ledger.close();
  await pool.end();
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
