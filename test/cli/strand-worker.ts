/**
 * Leaves work behind for the CLI tests: runs COUNT transfers one after the
 * other through the in-process coordinator on LOG_DIR (databases ledger_a =
 * PG_A and ledger_b = PG_B, GID prefix GID_PREFIX), usually with
 * TWOPC_CRASH_AT set so it SIGKILLs itself at a named point. Each
 * transaction's id is printed as a JSON line before it commits, so the last
 * `begun` line names the transaction the crash stranded.
 */
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';

async function main(): Promise<void> {
  const env = process.env;
  const pools = { ledger_a: new Pool({ connectionString: env.PG_A, max: 4 }), ledger_b: new Pool({ connectionString: env.PG_B, max: 4 }) };
  const participants = Object.entries(pools).map(([name, pool]) => new PostgresParticipant({ name, pool }));
  await Promise.all(participants.map((p) => p.start()));
  const coordinator = await Coordinator.start({
    log: new FileDecisionLog({ dir: env.LOG_DIR! }),
    databases: participants,
    engine: { gidPrefix: env.GID_PREFIX ?? 'twopc', sweepIntervalMs: 0, phaseTwoBaseDelayMs: 10, phaseTwoMaxDelayMs: 100 },
  });
  for (let i = 0; i < Number(env.COUNT ?? 3); i++) {
    await coordinator.transaction(async (tx) => {
      process.stdout.write(`${JSON.stringify({ begun: tx.id })}\n`);
      // Money moves from ledger_a to ledger_b; the transfer row carries the transaction id.
      await tx.db('ledger_a').query('update accounts set balance = balance - 1 where id = 1');
      await tx.db('ledger_a').query('insert into transfers (id, account, delta) values ($1, 1, -1)', [tx.id]);
      await tx.db('ledger_b').query('update accounts set balance = balance + 1 where id = 1');
      await tx.db('ledger_b').query('insert into transfers (id, account, delta) values ($1, 1, 1)', [tx.id]);
    });
    process.stdout.write(`${JSON.stringify({ committed: i })}\n`);
  }
  await coordinator.close();
  await Promise.all(participants.map((p) => p.close()));
  await Promise.all(Object.values(pools).map((p) => p.end()));
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
