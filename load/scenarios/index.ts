import { abortActive } from './abort-active';
import { active } from './active';
import { burst } from './burst';
import { commitThenAbort } from './commit-then-abort';
import { compaction } from './compaction';
import { deadParticipant } from './dead-participant';
import type { Scenario } from './scenario';
import { slowParticipant } from './slow-participant';
import { steady } from './steady';

/** Issue 16's table, row by row. */
export const SCENARIOS: readonly Scenario[] = [steady, commitThenAbort, active, abortActive, compaction, burst, slowParticipant, deadParticipant];
