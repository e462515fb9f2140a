// A consumer of the installed `twopc` through import: named imports of a CommonJS package, as
// Node's interop gives them to an ES module.
import { CRASH_POINTS, Coordinator, FileDecisionLog, buildGid, createDecisionLog } from 'twopc';
import twopc from 'twopc';

const log = createDecisionLog(`file:${process.env.DATA_DIR ?? ''}`);
const coordinator = await Coordinator.start({ log, databases: [] });
await coordinator.close();
console.log(
  JSON.stringify({
    started: true,
    fileLog: log instanceof FileDecisionLog,
    sameAsDefault: twopc.Coordinator === Coordinator,
    gid: buildGid('twopc', '0190f5c2-8d1e-7c3a-9b4f-2a6e1d0c9b7a', 1).length > 0,
    crashPoints: CRASH_POINTS.length > 0,
  }),
);
