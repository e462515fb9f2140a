/**
 * `twopc serve` as the chaos runner starts it: the real CLI program
 * (coordinator/cli/program.ts) in this very process, so SIGKILL, SIGSTOP and
 * crash points hit the coordinator itself. It adds that the process ends when
 * the runner is gone, and the test-only switches of its environment
 * (chaos/test-switches.ts: refused unless NODE_ENV=test, announced on the
 * coordinator's log), injected as the service's extensions. Arguments are
 * those of `twopc serve`.
 */
import { runTwopc } from '../coordinator/cli/program';
import { exitWithParent } from './orphan-guard';
import { chaosServiceHooks } from './test-switches';

exitWithParent();
runTwopc([process.argv[0], 'twopc', 'serve', ...process.argv.slice(2)], { serviceHooks: chaosServiceHooks(process.env) });
