import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { mintTxId } from '../../coordinator/engine/ports/owned-tx-id';
import { buildGid } from '../../coordinator/engine/ports/protocol';
import { TransactionEngine, type CarriedBranch } from '../../coordinator/engine/transaction-engine';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { mintCarriedTxId } from '../../participant-sdk/src/client';
import { FakeParticipant } from './fake-participant';

/**
 * Carried registration at the engine: a commit that carries its branches
 * records them before any PREPARE; an inquiry about an id the register does
 * not know decides abort for it, so a later carried commit under that id fails.
 */
describe('carried registration (engine)', () => {
  let dir: string;
  let a: FakeParticipant;
  let b: FakeParticipant;
  let engine: TransactionEngine;

  const branch = (participant: string, txId: string, branchId: number): CarriedBranch => ({ participant, branchId, gid: buildGid('twopc', txId, branchId) });
  const open = async (carriedRegistration: boolean) => {
    const config = parseEngineConfig({ sweepIntervalMs: 0, phaseTwoBaseDelayMs: 1, phaseTwoMaxDelayMs: 5, commitWaitMs: 2_000, carriedRegistration });
    engine = new TransactionEngine({ log: new FileDecisionLog({ dir }), participants: new ParticipantRegistry([a, b]), config });
    await engine.start();
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-carried-'));
    a = new FakeParticipant('a');
    b = new FakeParticipant('b');
  });
  afterEach(async () => {
    await engine.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('commits a transaction whose commit carries its two branches, and answers a retry from the register', async () => {
    await open(true);
    const id = mintCarriedTxId();
    const branches = [branch('a', id, 7), branch('b', id, 123456)];
    await expect(engine.commitCarried(id, branches)).resolves.toMatchObject({ state: 'committed', phaseTwoPending: false });
    expect(a.ops('prepare')).toEqual([branches[0].gid]);
    expect(b.ops('commit')).toEqual([branches[1].gid]);
    const history = await engine.admin.history(id);
    // Registered before the decision, in the log as an enlist would have been.
    expect(history.map((r) => r.type)).toEqual(['begin', 'enlist', 'enlist', 'decision', 'complete']);

    await expect(engine.commitCarried(id, branches)).resolves.toMatchObject({ state: 'committed' });
    expect(a.ops('prepare')).toHaveLength(1);
  });

  it('decides abort for an id the register does not know when asked about it; a later carried commit under it fails and prepares nothing', async () => {
    await open(true);
    const id = mintCarriedTxId();
    await expect(engine.status(id)).resolves.toMatchObject({ state: 'aborted', decision: 'abort' });
    // Durable through the register: a restart still knows it.
    await engine.stop();
    await open(true);
    await expect(engine.commitCarried(id, [branch('a', id, 1), branch('b', id, 2)])).rejects.toMatchObject({ code: 'transaction-aborted' });
    expect(a.calls.filter((c) => c.op !== 'rollback')).toEqual([]);
    expect(b.calls.filter((c) => c.op !== 'rollback')).toEqual([]);
  });

  it('answers an inquiry about an id older than the longest timeout as before (not found), deciding nothing', async () => {
    await open(true);
    const old = mintCarriedTxId(Date.now() - 700_000);
    await expect(engine.status(old)).resolves.toBeUndefined();
    await expect(engine.admin.history(old)).rejects.toMatchObject({ code: 'not-found' });
  });

  it('leaves inquiries and commits as they were when the option is off', async () => {
    await open(false);
    const id = mintCarriedTxId();
    await expect(engine.status(id)).resolves.toBeUndefined();
    await expect(engine.commitCarried(id, [branch('a', id, 1)])).rejects.toMatchObject({ code: 'invalid-input' });
    expect(a.calls).toEqual([]);
  });

  it('refuses ids that carry an owner tag, stale ids, foreign GIDs, clashing branch ids and unknown participants', async () => {
    await open(true);
    const tagged = mintTxId(42);
    await expect(engine.commitCarried(tagged, [branch('a', tagged, 1)])).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'id' } });
    const stale = mintCarriedTxId(Date.now() - 700_000);
    await expect(engine.commitCarried(stale, [branch('a', stale, 1)])).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'id' } });
    const id = mintCarriedTxId();
    await expect(engine.commitCarried(id, [{ participant: 'a', branchId: 1, gid: buildGid('other', id, 1) }])).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(engine.commitCarried(id, [branch('a', id, 1), branch('b', id, 1)])).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(engine.commitCarried(id, [branch('c', id, 1)])).rejects.toMatchObject({ code: 'invalid-input' });
    expect([...a.calls, ...b.calls]).toEqual([]);
  });
});
