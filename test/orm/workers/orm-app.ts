/**
 * An application running the in-process coordinator over two bank databases
 * (bank_a, bank_b), its work written with one ORM (env ORM), as a process of
 * its own. At start the coordinator recovers (a file log in LOG_DIR) and the
 * app prints `{"event":"ready","recovery":…}`; with TRANSFER=`from,to,amount`
 * it then moves the money (bank_a's `from` to bank_b's `to`) in one
 * transaction and prints `{"event":"transferred","txId":…}`. Under
 * NODE_ENV=test, TWOPC_CRASH_AT SIGKILLs it at a crash point on the way.
 *
 * Env: ORM, LOG_DIR, DATABASE_A, DATABASE_B, TRANSFER (optional).
 */
import { Pool } from 'pg';
import { Coordinator } from '../../../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../../../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../../../participant-sdk/src/postgres';
import { isOrm, loadBook } from '../recipes';

function emit(event: string, details: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...details })}\n`);
}

async function main(): Promise<void> {
  const env = process.env as Record<string, string | undefined>;
  if (!isOrm(env.ORM)) throw new Error(`ORM must be one of the recipes (got ${JSON.stringify(env.ORM)})`);
  const book = loadBook(env.ORM);
  const pools = [new Pool({ connectionString: env.DATABASE_A, max: 2 }), new Pool({ connectionString: env.DATABASE_B, max: 2 })];
  const [a, b] = [new PostgresParticipant({ name: 'bank_a', pool: pools[0] }), new PostgresParticipant({ name: 'bank_b', pool: pools[1] })];
  await Promise.all([a.start(), b.start()]);
  const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: env.LOG_DIR! }), databases: [a, b], engine: { sweepIntervalMs: 0 } });
  emit('ready', { recovery: coordinator.startReport.recovery });
  if (env.TRANSFER) {
    const [from, to, amount] = env.TRANSFER.split(',').map(Number);
    let txId = '';
    await coordinator.transaction(async (tx) => {
      txId = tx.id;
      emit('began', { txId });
      await book(tx.db('bank_a'), tx.id, from, -amount);
      await book(tx.db('bank_b'), tx.id, to, amount);
    });
    emit('transferred', { txId });
  }
  await coordinator.close();
  await Promise.all([a.close(), b.close()]);
  await Promise.all(pools.map((p) => p.end()));
}

main().catch((e: unknown) => {
  emit('failed', { message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  process.exit(1);
});
