import fs from 'node:fs';
import { records, startTracing } from './span-recorder';

// Preloaded into a child process (node --import tsx --import this file): the process traces, and
// writes its finished spans to TWOPC_SPANS_FILE when it exits.
const exporter = startTracing();
process.on('exit', () => {
  fs.writeFileSync(process.env.TWOPC_SPANS_FILE!, JSON.stringify(records(exporter, process.env.TWOPC_SPANS_PROCESS ?? String(process.pid))));
});
