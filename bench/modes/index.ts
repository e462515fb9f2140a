import type { BenchMode } from '../bench-mode';
import { noBeginRecords } from '../profile/no-begin-records';
import { noWaitAppends } from '../profile/no-wait-appends';
import { withoutTxStatus } from '../profile/no-tx-status';
import { syncWriteLogFs } from '../profile/sync-write-fs';
import { baseCheckout } from './base-checkout';
import { engineMode } from './engine';
import { httpBaseMode, httpDecidedMode, httpMode, httpNoBatchMode } from './http';
import { httpCarriedDecidedBaseMode, httpCarriedDecidedMode, httpCarriedMode } from './http-carried';
import { httpHopsMode } from './http-hops';
import { httpLocalMode } from './http-local';
import { localMode } from './local';
import { rawTwoPhaseMode } from './raw-2pc';

/** The modes `npm run bench` runs, in order. A new mode is one file in this folder plus one line here. */
export const MODES: readonly BenchMode[] = [localMode, rawTwoPhaseMode(), engineMode(), httpMode, httpLocalMode];

/**
 * Profiling aids, run only when named in --modes: each adds one engine cost to
 * the floor, or removes one from the engine, so its price can be read off.
 */
export const WHAT_IF_MODES: readonly BenchMode[] = [
  rawTwoPhaseMode('raw-serial-begin', { serialBegin: true }),
  rawTwoPhaseMode('raw-marker', { marker: true }),
  rawTwoPhaseMode('raw-xid', { xid: true }),
  // Issue 12's PostgreSQL-side levers, each on its own and both (what the adapter sends now).
  rawTwoPhaseMode('raw-xid-cached', { xid: true, cachedHistory: true }),
  rawTwoPhaseMode('raw-xid-noguard', { xid: true, noGuard: true }),
  rawTwoPhaseMode('raw-xid-after', { xid: true, cachedHistory: true, noGuard: true }),
  rawTwoPhaseMode('raw-guard', { guard: true }),
  rawTwoPhaseMode('raw-xid-only', { xidOnly: true }),
  rawTwoPhaseMode('raw-tag', { tag: true }),
  // The floor with exactly the SQL the adapter sends today (tag at BEGIN, xid + cached history, no
  // guard): what any engine on this adapter could reach at best.
  rawTwoPhaseMode('raw-adapter-sql', { xid: true, cachedHistory: true, noGuard: true, tag: true }),
  // Last-resource commit with the adapter's SQL: ledger_a prepared (xid proof), ledger_b committed in one phase with its marker.
  rawTwoPhaseMode('raw-lrc', { xid: true, cachedHistory: true, noGuard: true, tag: true, lastResource: true }),
  rawTwoPhaseMode('raw-engine-sql', { serialBegin: true, marker: true }),
  engineMode('engine-nowait', { wrapLog: noWaitAppends }),
  engineMode('engine-nobegin', { wrapLog: noBeginRecords }),
  engineMode('engine-syncwrite', { logFs: syncWriteLogFs }),
  // One change of issue 12 taken back each: the marker proof (a row inserted with every PREPARE),
  // a second checkout for phase 2, and both (the engine as it was before).
  engineMode('engine-marker', { settings: { commitProof: 'marker' } }),
  engineMode('engine-nokeep', { settings: { keepPreparedConnectionMs: 0 } }),
  engineMode('engine-before', { settings: { commitProof: 'marker', keepPreparedConnectionMs: 0 } }),
  // BENCH_BASE_DIR=<another checkout>: the same engine mode built from that checkout's code (a before/after in one run).
  engineMode('engine-base', { impl: baseCheckout }),
  // The in-block guard sent with every PREPARE again (the connections hide their transaction status).
  engineMode('engine-sqlguard', { settings: { wrapPool: withoutTxStatus } }),
  httpHopsMode('http-hops', { carried: false, batch: false }),
  httpHopsMode('http-hops-batched', { carried: false, batch: true }),
  httpHopsMode('http-carried-hops', { carried: true, batch: false }),
  httpHopsMode('http-carried-hops-batched', { carried: true, batch: true }),
  httpCarriedMode,
  httpCarriedDecidedMode,
  httpNoBatchMode,
  httpDecidedMode,
  // BENCH_BASE_DIR=<another checkout>: the services modes with that checkout's coordinator and services.
  httpBaseMode,
  httpCarriedDecidedBaseMode,
];
