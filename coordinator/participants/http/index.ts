export { HttpParticipant } from './http-participant';
export { HttpParticipants } from './http-participants';
export { HTTP_PARTICIPANT_DEFAULTS } from './http-participant-options';
export type { HttpParticipantOptions } from './http-participant-options';
export { ParticipantPools } from './participant-pools';
export type { ParticipantRequest, ParticipantResponse } from './participant-pools';
export { allowListEntryProblem, checkParticipantUrl } from './participant-url';
