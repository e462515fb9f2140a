import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NodeProcess } from './node-process';

/** Options of {@link startCoordinator}. */
export interface CoordinatorSpec {
  /** Directory for the decision log and the config file (created if missing). */
  dir: string;
  /** Base URLs participant services enlist with; the coordinator calls no others (TWOPC_PARTICIPANT_URL_ALLOW_LIST). */
  participantUrls: string[];
  /** `serve` config file contents (`engine`, `participantCalls`, ...), if any. */
  config?: Record<string, unknown>;
  logLevel?: string;
  /** Options for node itself (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Another checkout's root to run `twopc serve` from (a bench's before/after); this one's by default. */
  root?: string;
}

/** A `twopc serve` process and what its clients need to reach it. */
export interface RunningCoordinator {
  url: string;
  /** Bearer token of its API (generated for this run). */
  apiToken: string;
  /** Secret it signs participant calls with (generated for this run); participant services need it too. */
  participantSecret: string;
  process: NodeProcess;
}

/** A random secret of the kind the coordinator accepts (≥ 16 characters). */
export function generateSecret(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Starts `twopc serve` as its own process on a free port of 127.0.0.1, with
 * a file decision log in `spec.dir` and freshly generated API token and
 * participant secret. Resolves once recovery is done and it serves.
 *
 * @example
 * const coordinator = await startCoordinator({ dir: '/tmp/demo/coordinator', participantUrls: ['http://127.0.0.1:4001/twopc'] });
 * // ... then coordinator.process.stop()
 */
export async function startCoordinator(spec: CoordinatorSpec): Promise<RunningCoordinator> {
  fs.mkdirSync(spec.dir, { recursive: true });
  const apiToken = generateSecret();
  const participantSecret = generateSecret();
  const args = ['serve'];
  if (spec.config) {
    const file = path.join(spec.dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify(spec.config));
    args.push('--config', file);
  }
  const { proc, match } = await NodeProcess.start({
    label: 'coordinator',
    entry: 'coordinator/cli/main',
    args,
    nodeArgs: spec.nodeArgs ?? [],
    ...(spec.root ? { root: spec.root } : {}),
    env: {
      TWOPC_HOST: '127.0.0.1',
      TWOPC_PORT: '0',
      TWOPC_DATA_DIR: path.join(spec.dir, 'data'),
      TWOPC_API_TOKEN: apiToken,
      TWOPC_PARTICIPANT_SECRET: participantSecret,
      TWOPC_PARTICIPANT_URL_ALLOW_LIST: spec.participantUrls.join(','),
      // The ready line is logged at info.
      TWOPC_LOG_LEVEL: spec.logLevel ?? 'info',
    },
    ready: /"port":(\d+).*"msg":"twopc coordinator ready"/,
  });
  return { url: `http://127.0.0.1:${match[1]}`, apiToken, participantSecret, process: proc };
}
