import { Coordinator } from '../../coordinator/in-process/coordinator';
import type { EngineObserver } from '../../coordinator/engine/engine-observer';
import type { DecisionLog } from '../../coordinator/engine/ports/decision-log';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import type { LogFs } from '../../coordinator/log/file/log-fs';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import type { Pool } from 'pg';
import type { PostgresParticipantOptions, PostgresPool } from '../../participant-sdk/src/postgres';
import type { BenchMode } from '../bench-mode';
import { TimedDecisionLog } from '../profile/timed-decision-log';
import { timedLogFs } from '../profile/timed-log-fs';
import { UPDATE_BALANCE } from '../transfer-plan';

const DATABASES = ['ledger_a', 'ledger_b'] as const;

/** Changes the engine's log for a what-if mode (e.g. to stop waiting on unforced appends). */
export type LogWrapper = (log: DecisionLog) => DecisionLog;

/**
 * The in-process twopc engine with its defaults: a FileDecisionLog and one
 * PostgresParticipant per ledger, driven the way an application would, with
 * `coordinator.transaction`. With --profile the log, its file system and the
 * engine's phases are timed (the wrappers sit on the engine's own seams).
 */
/** Participant settings a what-if mode changes (e.g. the commit proof). */
export type ParticipantSettings = Pick<PostgresParticipantOptions, 'commitProof' | 'keepPreparedConnectionMs'> & {
  /** Wraps each ledger's pool (e.g. to hide the connections' transaction status). */
  wrapPool?: (pool: Pool) => PostgresPool;
};

/** The classes the mode builds the engine from: this checkout's, or another's (see `baseCheckoutModes`). */
export interface EngineImpl {
  Coordinator: typeof Coordinator;
  FileDecisionLog: typeof FileDecisionLog;
  PostgresParticipant: typeof PostgresParticipant;
}

/** What a what-if mode changes: the log (a wrapper), the participants' settings, the file log's fs, or the code itself. */
export interface EngineVariant {
  wrapLog?: LogWrapper;
  settings?: ParticipantSettings;
  logFs?: () => LogFs;
  impl?: () => Promise<EngineImpl>;
}

const THIS_CHECKOUT: EngineImpl = { Coordinator, FileDecisionLog, PostgresParticipant };

export function engineMode(name = 'engine', variant: EngineVariant = {}): BenchMode {
  const { wrapLog = (log: DecisionLog) => log, settings = {}, logFs } = variant;
  return {
    name,
    summary: `twopc Coordinator + FileDecisionLog + two PostgresParticipants (${settingsLabel(settings)}), coordinator.transaction(...)`,
    async setup(ctx) {
      const tally = ctx.tally;
      const impl = variant.impl ? await variant.impl() : THIS_CHECKOUT;
      const fs = tally ? timedLogFs(tally, logFs?.()) : logFs?.();
      const fileLog = new impl.FileDecisionLog({ dir: ctx.tempDir('log'), ...(fs ? { fs } : {}) });
      const log = wrapLog(tally ? new TimedDecisionLog(fileLog, tally) : fileLog);
      const observer: EngineObserver | undefined = tally && { phaseLatency: (phase, ms) => tally.add(`${name}: ${phase}`, ms) };
      const { wrapPool = (pool: Pool): PostgresPool => pool, ...options } = settings;
      const participants = DATABASES.map((name) => new impl.PostgresParticipant({ name, pool: wrapPool(ctx.pool(name)), ...options }));
      for (const p of participants) await p.start();
      const coordinator = await impl.Coordinator.start({ log, databases: participants, ...(observer ? { observer } : {}) });
      return {
        async transfer(t) {
          const started = performance.now();
          let workDone = started;
          await coordinator.transaction(async (tx) => {
            // ledger_a first: the canonical lock order every mode keeps.
            await tx.db('ledger_a').query(UPDATE_BALANCE, [t.delta, t.accountA]);
            await tx.db('ledger_b').query(UPDATE_BALANCE, [-t.delta, t.accountB]);
            workDone = performance.now();
            // Both databases declared up front, so their branches open in parallel (as raw's BEGINs do).
          }, { databases: DATABASES });
          if (tally) {
            tally.add(`${name}: 1 work (begin, enlist, updates)`, workDone - started);
            tally.add(`${name}: 2 commit (prepare .. phase 2)`, performance.now() - workDone);
          }
        },
        async close() {
          await coordinator.close();
          await Promise.all(participants.map((p) => p.close()));
        },
      };
    },
  };
}

function settingsLabel({ wrapPool, ...options }: ParticipantSettings): string {
  const label = JSON.stringify({ ...options, ...(wrapPool ? { pool: wrapPool.name } : {}) });
  return label === '{}' ? 'defaults' : label;
}
