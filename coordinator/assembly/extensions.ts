import type { Participant } from '../engine/ports/participant';
import type { LogFs } from '../log/file/log-fs';

/**
 * What a host may add to the coordinator it assembles, at the seams the
 * engine already has: the file log's file system and the participants. The
 * chaos harness injects its storage faults and its protocol break (the
 * negative control) through these; the engine itself has no test switch.
 */
export interface CoordinatorExtensions {
  /** The file system the file decision log writes through (default: node's). */
  logFs?: LogFs;
  /** Wraps every participant the engine calls: the configured databases, and each participant service reached by URL. */
  wrapParticipant?(participant: Participant): Participant;
}
