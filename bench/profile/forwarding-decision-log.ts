import type { AppendableRecord, AppendOptions, CompactReport, DecisionLog, DecisionRecord, LogRecord, OpenReport, TxSnapshot } from '../../coordinator/engine/ports/decision-log';

/** A DecisionLog that forwards every call to another; profiling decorators override what they measure or change. */
export class ForwardingDecisionLog implements DecisionLog {
  constructor(protected readonly inner: DecisionLog) {}

  get kind(): string {
    return this.inner.kind;
  }

  open(): Promise<OpenReport> {
    return this.inner.open();
  }

  append(record: AppendableRecord, options?: AppendOptions): Promise<void> {
    return this.inner.append(record, options);
  }

  decide(decision: Omit<DecisionRecord, 'type'>): Promise<DecisionRecord> {
    return this.inner.decide(decision);
  }

  get(txId: string): Promise<TxSnapshot | undefined> {
    return this.inner.get(txId);
  }

  unfinished(): Promise<TxSnapshot[]> {
    return this.inner.unfinished();
  }

  history(txId: string): Promise<LogRecord[]> {
    return this.inner.history(txId);
  }

  compact(): Promise<CompactReport> {
    return this.inner.compact();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
