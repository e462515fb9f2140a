import type { TransactionEngine } from '../engine/transaction-engine';
import type { Answer } from './answer';
import { problem } from './problem';

/**
 * Until recovery has decided every logged transaction (and once stopping, or
 * once the log failed), the API answers 503: undefined when the engine is
 * ready, else the problem to send.
 */
export function notReadyAnswer(engine: TransactionEngine): Answer | undefined {
  if (engine.ready) return undefined;
  const failure = engine.logFailure;
  // The log refuses every write until a restart: say so, rather than "retry shortly".
  if (failure) return problem(503, 'log-unavailable', `${failure.message}; restart the coordinator once the disk is healthy`);
  return problem(503, 'not-ready', 'the coordinator is recovering or stopping; retry shortly', {}, { 'retry-after': '1' });
}
