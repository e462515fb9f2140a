import type { Pool } from 'pg';
import type { BenchOptions } from './bench-options';
import type { Tally } from './profile/tally';
import type { BankTransfer, Ledger } from './transfer-plan';

/** What the runner hands a mode: pools and dirs it owns, and (with --profile) a tally to time its steps into. */
export interface ModeContext {
  readonly options: BenchOptions;
  /** A pool of `options.poolSize` on a ledger; the runner ends it after the mode closes. Same size in every mode. */
  pool(ledger: Ledger): Pool;
  /** A fresh temp directory, removed when the bench ends. */
  tempDir(name: string): string;
  /** Set with --profile: the mode may record its own step timings (e.g. `raw: decision fsync`). */
  readonly tally?: Tally;
}

/** A mode, set up once and then driven by the runner for every round. */
export interface ModeRunner {
  /** Moves money for one transfer; resolves when it is committed (or throws). */
  transfer(t: BankTransfer): Promise<void>;
  /** Extra lines for the profile (e.g. decision batch sizes). */
  profileNotes?(): string[];
  /** Releases what setup acquired, except the pools (the runner ends those). */
  close(): Promise<void>;
}

/** One bench mode: a name for the table and JSON, and how to set it up. Adding a mode is adding one of these. */
export interface BenchMode {
  readonly name: string;
  readonly summary: string;
  setup(ctx: ModeContext): Promise<ModeRunner>;
}
