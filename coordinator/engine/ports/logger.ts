import type { SdkLogger } from '../../../participant-sdk/src/client';

/** The subset of a pino logger the engine uses, the same as the SDK's; pass `pino()` or anything shaped like it. */
export type EngineLogger = SdkLogger;

export { silentLogger } from '../../../participant-sdk/src/client';
