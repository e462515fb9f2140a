import type { BenchMode } from '../bench-mode';
import { noWaitAppends } from '../profile/no-wait-appends';
import { engineMode } from './engine';
import { httpMode } from './http';
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
  rawTwoPhaseMode('raw-engine-sql', { serialBegin: true, marker: true }),
  engineMode('engine-nowait', noWaitAppends),
  httpHopsMode,
];
