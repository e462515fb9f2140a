import type { AppendableRecord, AppendOptions, DecisionLog, DecisionRecord } from '../../coordinator/engine/ports/decision-log';
import { ForwardingDecisionLog } from './forwarding-decision-log';
import type { Tally } from './tally';

/**
 * Times each append and decide the engine makes, by record type: how many log
 * calls a transfer costs and how long the engine waits on each (a forced
 * decide includes its share of the group fdatasync).
 */
export class TimedDecisionLog extends ForwardingDecisionLog {
  constructor(
    inner: DecisionLog,
    private readonly tally: Tally,
  ) {
    super(inner);
  }

  override append(record: AppendableRecord, options?: AppendOptions): Promise<void> {
    return this.tally.time(`log: append ${record.type}`, () => this.inner.append(record, options));
  }

  override decide(decision: Omit<DecisionRecord, 'type'>): Promise<DecisionRecord> {
    return this.tally.time(`log: decide ${decision.outcome}`, () => this.inner.decide(decision));
  }
}
