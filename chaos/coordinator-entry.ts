/**
 * `twopc serve` as the chaos runner starts it: the real CLI
 * (coordinator/cli/main.ts) in this very process, so SIGKILL, SIGSTOP and
 * crash points hit the coordinator itself; it only adds that the process ends
 * when the runner is gone. Arguments are those of `twopc serve`.
 */
import { exitWithParent } from './orphan-guard';

exitWithParent();
process.argv = [process.argv[0], require.resolve('../coordinator/cli/main'), 'serve', ...process.argv.slice(2)];
// Loaded only now: the CLI parses process.argv as it loads.
void import('../coordinator/cli/main');
