import type { CoordinatorExtensions } from '../coordinator/assembly/extensions';
import type { EngineLogger } from '../coordinator/engine/ports/logger';
import { TwopcError } from '../coordinator/engine/ports/protocol';
import { nodeLogFs, type LogFs } from '../coordinator/log/file/log-fs';
import type { ServiceHooks } from '../coordinator/service/serve';
import { faultyLogFs, parseLogFault, type LogFaultSpec } from './faulty-log-fs';
import { commitOneBeforeDecision } from './protocol-breaks';

// Switches that break twopc ON PURPOSE, for the chaos harness (chaos/) and
// its tests: a negative control proving the checker catches a broken
// protocol, and storage faults of the file log. They are read only by the
// chaos harness's `twopc serve` (chaos/coordinator-entry.ts), only from the
// environment, only when NODE_ENV=test, and every one that is on is logged at
// error level when the service starts. They reach the coordinator as
// CoordinatorExtensions (a file system, a participant wrapper): the product
// has no test switch.

/** Environment variable: a protocol break from {@link PROTOCOL_BREAKS}. */
export const TEST_BREAK_ENV = 'TWOPC_TEST_ONLY_BREAK_PROTOCOL';
/** Environment variable: `<write|fdatasync>:<ENOSPC|EIO>:<n>`, see {@link parseLogFault}. */
export const TEST_LOG_FAULT_ENV = 'TWOPC_TEST_ONLY_LOG_FAULT';

/**
 * Deliberate protocol violations (negative controls).
 * - `commit-one-before-decision`: the first branch to vote yes gets COMMIT
 *   PREPARED at once, before the other votes are in and before any decision
 *   is written. A transaction another branch votes no on then ends half
 *   committed; a crash before the decision does the same.
 */
export const PROTOCOL_BREAKS = ['commit-one-before-decision'] as const;
export type ProtocolBreak = (typeof PROTOCOL_BREAKS)[number];

/** What the test-only switches turned on (usually nothing). */
export interface TestSwitches {
  breaks: ReadonlySet<ProtocolBreak>;
  /** The storage fault to inject into the file log, if any. */
  logFault?: LogFaultSpec;
}

export const NO_TEST_SWITCHES: TestSwitches = Object.freeze({ breaks: new Set<ProtocolBreak>() });

/**
 * Reads the test-only switches. Any of them set without NODE_ENV=test is
 * refused with `invalid-config`: a production coordinator can never run
 * broken because a variable leaked into its environment.
 *
 * @example
 * const switches = testSwitchesFromEnv(process.env, (msg, details) => logger.error(details, msg));
 */
export function testSwitchesFromEnv(env: NodeJS.ProcessEnv, shout: (message: string, details: Record<string, unknown>) => void): TestSwitches {
  const breakSpec = env[TEST_BREAK_ENV];
  const faultSpec = env[TEST_LOG_FAULT_ENV];
  if (!breakSpec && !faultSpec) return NO_TEST_SWITCHES;
  for (const [name, value] of [[TEST_BREAK_ENV, breakSpec], [TEST_LOG_FAULT_ENV, faultSpec]] as const) {
    if (value && env.NODE_ENV !== 'test') {
      throw new TwopcError('invalid-config', `${name} is a test-only switch that breaks the coordinator on purpose; it is refused unless NODE_ENV=test`, { field: name });
    }
  }
  const breaks = new Set<ProtocolBreak>();
  if (breakSpec) {
    if (!(PROTOCOL_BREAKS as readonly string[]).includes(breakSpec)) {
      throw new TwopcError('invalid-config', `${TEST_BREAK_ENV} must be one of ${PROTOCOL_BREAKS.join(', ')} (got ${JSON.stringify(breakSpec)})`, { field: TEST_BREAK_ENV });
    }
    breaks.add(breakSpec as ProtocolBreak);
    shout(`TEST ONLY: THE 2PC PROTOCOL IS DELIBERATELY BROKEN (${breakSpec}); this coordinator WILL lose atomicity. Never run it with real data.`, { [TEST_BREAK_ENV]: breakSpec });
  }
  const logFault = faultSpec ? parseLogFault(faultSpec, TEST_LOG_FAULT_ENV) : undefined;
  if (logFault) shout(`TEST ONLY: the decision log will fail on purpose (${faultSpec})`, { [TEST_LOG_FAULT_ENV]: faultSpec });
  return Object.freeze({ breaks, ...(logFault ? { logFault } : {}) });
}

/** The file system the file log should use under these switches: `base` itself unless a storage fault is armed. */
export function logFsFor(switches: TestSwitches, base: LogFs, onFault: (message: string) => void): LogFs {
  return switches.logFault ? faultyLogFs(base, switches.logFault, onFault) : base;
}

/** The switches as the coordinator's extensions: the file log's file system, and the protocol break as a participant wrapper. */
export function chaosExtensions(switches: TestSwitches, logger: EngineLogger): CoordinatorExtensions {
  return {
    logFs: logFsFor(switches, nodeLogFs(), (message) => logger.error({}, message)),
    ...(switches.breaks.has('commit-one-before-decision') ? { wrapParticipant: commitOneBeforeDecision() } : {}),
  };
}

/**
 * `startService` hooks that read the switches from `env` when the service
 * starts: refused there unless NODE_ENV=test, announced on the service's log.
 *
 * @example
 * await startService(config, chaosServiceHooks(process.env));
 */
export function chaosServiceHooks(env: NodeJS.ProcessEnv): ServiceHooks {
  return {
    extensions: (logger) => chaosExtensions(testSwitchesFromEnv(env, (message, details) => logger.error(details, message)), logger),
  };
}
