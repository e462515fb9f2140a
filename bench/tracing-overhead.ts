import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TransactionEngine } from '../coordinator/engine/transaction-engine';
import { ParticipantRegistry } from '../coordinator/engine/participant-registry';
import { parseEngineConfig } from '../coordinator/engine/engine-config';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { otelTracer } from '../coordinator/tracing/otel-tracer';
import { FakeParticipant } from '../test/engine/fake-participant';

// Engine-only cost of the OpenTelemetry hooks with @opentelemetry/api present and no SDK
// registered (what every installation has: prom-client depends on the API): begin, 2 enlists,
// commit, 64 at a time, on the file log; rounds interleaved.
async function round(traced: boolean, n: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-'));
  const e = new TransactionEngine({ log: new FileDecisionLog({ dir }), participants: new ParticipantRegistry([new FakeParticipant('a'), new FakeParticipant('b')]), config: parseEngineConfig({ sweepIntervalMs: 0 }), ...(traced ? { tracer: otelTracer } : {}) });
  await e.start();
  const t0 = process.hrtime.bigint();
  let left = n;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (left-- > 0) {
      const { id } = await e.begin();
      await e.enlist(id, 'a');
      await e.enlist(id, 'b');
      await e.commit(id);
    }
  }));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await e.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return (n / ms) * 1000;
}
(async () => {
  const base: number[] = [], traced: number[] = [];
  await round(false, 2000); await round(true, 2000);
  for (let i = 0; i < 5; i++) { base.push(await round(false, 5000)); traced.push(await round(true, 5000)); }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(JSON.stringify({ baselineTxPerS: Math.round(med(base)), tracedTxPerS: Math.round(med(traced)), ratio: +(med(traced) / med(base)).toFixed(3), rounds: 5 }));
})();
