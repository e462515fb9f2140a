/**
 * A child process for crash tests: runs bank transfers through the in-process
 * coordinator (MODE=run, usually with TWOPC_CRASH_AT set so it SIGKILLs itself
 * at a named point), or starts a coordinator on the same log, lets recovery and
 * one sweep finish, and exits (MODE=recover). COMMIT_PROOF picks the
 * participants' commit proof (default: the coordinator's, `xid`).
 *
 * Every acknowledged outcome is written to stdout as a JSON line *after* the
 * coordinator answered, so the parent knows which commits a client saw.
 */
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import type { CommitProof } from '../../participant-sdk/src/postgres';
import { TransactionAbortedError } from '../../coordinator/engine/ports/protocol';
import { randomTransfer, seededRandom, transfer } from '../../harness/bank';

async function main(): Promise<void> {
  const env = process.env;
  const mode = env.MODE ?? 'run';
  const pools = { ledger_a: new Pool({ connectionString: env.PG_A, max: 12 }), ledger_b: new Pool({ connectionString: env.PG_B, max: 12 }) };
  for (const pool of Object.values(pools)) pool.on('error', () => undefined);
  // COMMIT_PROOF: the proof under test (default: the coordinator's).
  const commitProof = env.COMMIT_PROOF as CommitProof | undefined;
  const participants = Object.entries(pools).map(([name, pool]) => new PostgresParticipant({ name, pool, ...(commitProof ? { commitProof } : {}) }));
  await Promise.all(participants.map((p) => p.start()));
  const coordinator = await Coordinator.start({
    log: new FileDecisionLog({ dir: env.LOG_DIR! }),
    databases: participants,
    engine: { sweepIntervalMs: 0, sweepGraceMs: 0, defaultTimeoutMs: 10_000, phaseTwoBaseDelayMs: 10, phaseTwoMaxDelayMs: 200 },
  });
  if (mode === 'recover') {
    const sweep = await coordinator.engine.admin.sweep();
    process.stdout.write(JSON.stringify({ recovery: coordinator.startReport.recovery, sweep }) + '\n');
  } else {
    const count = Number(env.COUNT ?? 200);
    const concurrency = Number(env.CONCURRENCY ?? 8);
    const random = seededRandom(Number(env.SEED ?? 1));
    const accounts = Number(env.ACCOUNTS ?? 20);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const t = randomTransfer(random, `t${next++}`, accounts, { 'swallowed-error': 0.15, overdraft: 0.05 }, Number(env.SINGLE_LEDGER_RATE ?? 0.1));
        try {
          await transfer(coordinator, t);
          process.stdout.write(JSON.stringify({ id: t.id, outcome: 'committed' }) + '\n');
        } catch (e) {
          const outcome = e instanceof TransactionAbortedError || t.sabotage === 'overdraft' ? 'aborted' : 'unknown';
          process.stdout.write(JSON.stringify({ id: t.id, outcome }) + '\n');
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
  await coordinator.close();
  await Promise.all(participants.map((p) => p.close()));
  await Promise.all(Object.values(pools).map((p) => p.end()));
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
