// A consumer of the installed `twopc` through require (this file compiles to CommonJS): the
// README's in-process example on two databases (its lines, verbatim: the test checks), then a
// Redis log without ioredis installed.
import { Pool } from 'pg';
import { Coordinator, FileDecisionLog, PostgresParticipant, TransactionAbortedError, createDecisionLog, isTwopcError } from 'twopc';

async function main(): Promise<void> {
  const [A_URL, B_URL] = [process.env.A_URL!, process.env.B_URL!];
  for (const url of [A_URL, B_URL]) {
    const pool = new Pool({ connectionString: url });
    await pool.query('create table accounts (id int primary key, balance int not null check (balance >= 0))');
    await pool.query('insert into accounts values (1, 100), (7, 0)');
    await pool.end();
  }

  const ledgerA = new PostgresParticipant({ name: 'ledger_a', pool: new Pool({ connectionString: A_URL }) });
  const ledgerB = new PostgresParticipant({ name: 'ledger_b', pool: new Pool({ connectionString: B_URL }) });
  await Promise.all([ledgerA.start(), ledgerB.start()]); // checks max_prepared_transactions, migrates twopc_marker

  const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: './data' }), databases: [ledgerA, ledgerB] });
  try {
    await coordinator.transaction(async (tx) => {
      await tx.db('ledger_a').query('update accounts set balance = balance - $1 where id = $2', [10, 1]);
      await tx.db('ledger_b').query('update accounts set balance = balance + $1 where id = $2', [10, 7]);
    });
  } catch (e) {
    if (e instanceof TransactionAbortedError) console.log('aborted:', e.reason); // which branch voted no, and why
    else throw e;
  }
  await coordinator.close();
  await Promise.all([ledgerA.close(), ledgerB.close()]);

  const balances: number[] = [];
  for (const url of [A_URL, B_URL]) {
    const pool = new Pool({ connectionString: url });
    balances.push(...(await pool.query<{ balance: number }>('select balance from accounts order by id')).rows.map((r) => r.balance));
    await pool.end();
  }

  let redis: { code?: string; message: string } = { message: 'opened' };
  try {
    await createDecisionLog('redis://127.0.0.1:1').open();
  } catch (e) {
    redis = isTwopcError(e) ? { code: e.code, message: e.message } : { message: String(e) };
  }
  console.log(JSON.stringify({ balances, redis }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
