import type { PostgresParticipant } from '../../participant-sdk/src/postgres';
import type { Participant } from '../engine/ports/participant';

// The SDK cannot name the engine's seam (it never imports the coordinator), so
// the class no longer says `implements Participant`; this fails to compile if
// the adapter ever stops fitting it.
type Assert<T extends true> = T;
export type PostgresParticipantFitsTheSeam = Assert<PostgresParticipant extends Participant ? true : false>;
