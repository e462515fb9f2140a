import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { nodeLogFs } from '../../coordinator/log/file/log-fs';
import { FakeParticipant } from './fake-participant';

/**
 * Issue 12, concurrency 1: an in-process registration (`awaitWrite: false`:
 * only the transaction's first PREPARE, round trips later, waits for it) is
 * written at the end of the event loop's turn, not on the next microtask, so
 * that the branch's BEGIN (sent in the same turn) goes out before the log's
 * write is handed to the thread pool. The guarantees stay: the registration
 * is written before any PREPARE, in order with the transaction's other
 * records, and an awaited registration (an eager HTTP branch) still starts
 * its write at once.
 */
describe('an unawaited registration is written at the end of the turn', () => {
  const dirs: string[] = [];
  const engines: TransactionEngine[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.stop();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  async function start() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-unhurried-'));
    dirs.push(dir);
    const events: string[] = [];
    const real = nodeLogFs();
    const log = new FileDecisionLog({
      dir,
      autoCompact: false,
      fs: { ...real, write: (fd, buffer, offset, length, position) => (events.push(`write ${buffer.subarray(offset, offset + length).toString('latin1').match(/"type":"(\w+)"/g)?.join(' ')}`), real.write(fd, buffer, offset, length, position)) },
    });
    const participant = (name: string) => {
      const p = new FakeParticipant(name);
      const prepare = p.prepare.bind(p);
      p.prepare = (branch) => (events.push(`prepare ${name}`), prepare(branch));
      return p;
    };
    const engine = new TransactionEngine({ log, participants: new ParticipantRegistry([participant('a'), participant('b')]), config: parseEngineConfig({ sweepIntervalMs: 0 }) });
    engines.push(engine);
    await engine.start();
    events.length = 0; // the lock file's and the segment's own writes
    return { engine, log, events };
  }

  /** Every microtask queued so far, and those they queue: what runs before the turn's I/O and immediates. */
  const microtasks = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };

  it('starts no write within the turn; the commit still waits for it before PREPARE', async () => {
    const { engine, log, events } = await start();
    const tx = await engine.begin();
    await engine.enlist(tx.id, 'a', { awaitWrite: false });
    await engine.enlist(tx.id, 'b', { awaitWrite: false });
    await microtasks();
    const duringTurn = [...events];
    await engine.commit(tx.id);
    expect({ duringTurn, first: events.slice(0, 3) }).toEqual({ duringTurn: [], first: ['write "type":"begin" "type":"enlist" "type":"enlist"', 'prepare a', 'prepare b'] });
    expect((await log.history(tx.id)).map((r) => r.type)).toEqual(['begin', 'enlist', 'enlist', 'decision', 'complete']);
  });

  it('an awaited registration starts its write at once', async () => {
    const { engine, events } = await start();
    const tx = await engine.begin();
    const enlisted = engine.enlist(tx.id, 'a');
    await microtasks();
    const duringTurn = [...events];
    await enlisted;
    expect(duringTurn).toEqual(['write "type":"begin" "type":"enlist"']);
  });

  it('an abort in the same turn is written after the registration, in one write', async () => {
    const { engine, log, events } = await start();
    const tx = await engine.begin();
    await engine.enlist(tx.id, 'a', { awaitWrite: false });
    await engine.abort(tx.id);
    expect(events[0]).toBe('write "type":"begin" "type":"enlist" "type":"decision"');
    expect((await log.history(tx.id)).map((r) => r.type).slice(0, 3)).toEqual(['begin', 'enlist', 'decision']);
  });
});
