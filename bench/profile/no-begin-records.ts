import type { AppendableRecord, AppendOptions, DecisionLog } from '../../coordinator/engine/ports/decision-log';
import { ForwardingDecisionLog } from './forwarding-decision-log';

/**
 * What-if only, NOT a valid log: begin records are dropped. The speed-up over
 * `engine` bounds what folding the begin into the first enlist record can
 * save (that would still write the begin's fields, in a record already sent).
 */
class NoBeginLog extends ForwardingDecisionLog {
  override append(record: AppendableRecord, options?: AppendOptions): Promise<void> {
    return record.type === 'begin' ? Promise.resolve() : this.inner.append(record, options);
  }
}

export function noBeginRecords(log: DecisionLog): DecisionLog {
  return new NoBeginLog(log);
}
