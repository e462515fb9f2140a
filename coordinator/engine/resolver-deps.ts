import type { AbortReason } from './ports/protocol';
import type { DecisionLog, DecisionRecord, TxSnapshot } from './ports/decision-log';
import type { EngineConfig } from './engine-config';
import type { EngineLogger } from './ports/logger';
import type { ParticipantRegistry } from './participant-registry';
import type { PhaseTwoDriver } from './phase-two';
import type { BranchInfo, DecisionSource } from './ports/types';

/**
 * What recovery and sweeps need from the engine to end transactions it is not
 * running itself: the log, the participants, phase 2, and the register.
 */
export interface ResolverDeps {
  log: DecisionLog;
  participants: ParticipantRegistry;
  config: EngineConfig;
  logger: EngineLogger;
  phaseTwo: PhaseTwoDriver;
  /** A transaction this process is running: recovery and sweeps leave it to its owner. */
  isLive(txId: string): boolean;
  /** Several instances on a shared store: false for a transaction another live instance owns (left to it). */
  mayRecover(snapshot: TxSnapshot): boolean;
  /** Began under this process's current lease (false on a single-instance log): it may be running here still. */
  beganUnderThisLease(snapshot: TxSnapshot): boolean;
  /** Decides abort through the register; resolves with the winner (which may be a commit). */
  decide(txId: string, branches: BranchInfo[], source: DecisionSource, reason?: AbortReason): Promise<DecisionRecord>;
  /** Records a commit for a transaction whose only branch committed in one phase. */
  decideCommitted(txId: string, branches: BranchInfo[]): Promise<DecisionRecord>;
}
