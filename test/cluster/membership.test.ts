import { Membership } from '../../coordinator/cluster/membership';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { PgCluster } from '../../harness/pg-cluster';
import { FakeParticipant } from '../engine/fake-participant';
import { runCli } from '../cli/cli-fixture';

/**
 * Two engines on one PostgreSQL log, each with its own Membership, in this
 * process: ownership of transactions, takeover of a dead instance's lease and
 * recovery of its transactions, a restart under the same name, and fencing
 * of an instance whose lease was taken over. (The same with real processes
 * and SIGKILL is test/multi-instance.)
 */

const DB = 'twopc_members';
const LEASE_MS = 400;
let cluster: PgCluster;
let url: string;
let schemas = 0;

beforeAll(async () => {
  cluster = await PgCluster.start({ name: 'members' });
  url = await cluster.createDatabase(DB);
});
afterAll(async () => {
  await cluster?.destroy();
});

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;

interface Instance {
  engine: TransactionEngine;
  membership: Membership;
  log: PostgresDecisionLog;
  participant: FakeParticipant;
  takeovers: number[][];
  fenced: number[];
}

function instance(schema: string, name: string, participant = new FakeParticipant('db')): Instance {
  const log = new PostgresDecisionLog({ connectionString: url, schema, allowVolatile: true, onWarning: () => undefined });
  const takeovers: number[][] = [];
  const fenced: number[] = [];
  let engine: TransactionEngine | undefined;
  const membership = new Membership({
    leases: log.leases,
    leaseMs: LEASE_MS,
    logger: quiet,
    identity: () => ({ name, url: `http://${name}.invalid:7070` }),
    onTakeover: (tokens) => {
      takeovers.push(tokens);
      void engine?.admin.recover();
    },
    onFenced: (lost) => {
      fenced.push(lost);
      engine?.handOver();
    },
  });
  engine = new TransactionEngine({
    log,
    ownership: membership,
    participants: new ParticipantRegistry([participant]),
    config: parseEngineConfig({ sweepIntervalMs: 0, phaseTwoBaseDelayMs: 1, phaseTwoMaxDelayMs: 5, commitWaitMs: 2_000, defaultTimeoutMs: 60_000 }),
    logger: quiet,
  });
  return { engine, membership, log, participant, takeovers, fenced };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Kills an instance the way SIGKILL would, as far as the store can tell: its timers stop, its lease is neither renewed nor released. */
function die(i: Instance): void {
  (i.membership as unknown as { stopped: boolean; timer?: NodeJS.Timeout }).stopped = true;
  clearInterval((i.membership as unknown as { timer?: NodeJS.Timeout }).timer);
}

describe('Membership: several engines on one PostgreSQL log', () => {
  let schema: string;
  const running: Instance[] = [];
  beforeEach(() => {
    schema = `members_${process.pid}_${++schemas}`;
  });
  afterEach(async () => {
    for (const i of running.splice(0)) {
      await i.engine.stop().catch(() => undefined);
      await i.log.close().catch(() => undefined);
    }
  });

  async function started(name: string, participant?: FakeParticipant): Promise<Instance> {
    const i = instance(schema, name, participant);
    running.push(i);
    await i.engine.start();
    return i;
  }

  it('stamps begins with the owner, leaves another live instance its transactions, and takes them over once it dies', async () => {
    const shared = new FakeParticipant('db');
    const a = await started('a', shared);
    const b = await started('b', shared);
    expect(a.membership.token).toBeLessThan(b.membership.token!);

    // A transaction prepared at a, about to commit: its decision is missing when a dies.
    const tx = await a.engine.begin();
    await a.engine.enlist(tx.id, 'db');
    await a.engine.enlist(tx.id, 'db');
    expect((await b.log.get(tx.id))?.owner).toBe(a.membership.token);

    // b's recovery passes leave it alone while a holds its lease.
    const report = await b.engine.admin.recover();
    expect(report.decidedAbort).toBe(0);
    expect((await b.log.get(tx.id))?.decision).toBeUndefined();

    const aToken = a.membership.token!;
    die(a);
    await waitFor('b takes a over', () => b.takeovers.flat().includes(aToken));
    await waitFor('b aborts a\'s undecided transaction', async () => (await b.log.get(tx.id))?.decision?.outcome === 'abort');
    expect((await b.log.get(tx.id))?.decision?.source).toBe('recovery');
    // a, a zombie now, can no longer write: its commit is refused by the store (fenced) or reads b's abort.
    const late = await a.engine.commit(tx.id).then(
      () => 'committed',
      (e: { code?: string }) => e.code,
    );
    expect(['fenced', 'outcome-unknown', 'transaction-aborted']).toContain(late);
    expect((await b.log.get(tx.id))?.decision?.outcome).toBe('abort');
    expect(shared.committed.size).toBe(0);
  });

  it('a restart under the same name takes over its previous process at once, before its lease would expire', async () => {
    const first = await started('same');
    const tx = await first.engine.begin();
    await first.engine.enlist(tx.id, 'db');
    die(first);
    // Its lease is still live: only the same name allows taking it over now.
    const before = (await first.log.leases.view()).leases.find((l) => l.token === first.membership.token)!;
    const again = instance(schema, 'same');
    running.push(again);
    const start = await again.engine.start();
    // Recovery at start found the previous process's transaction.
    expect(start.recovery.decidedAbort).toBe(1);
    const after = (await again.log.leases.view()).leases.find((l) => l.token === before.token)!;
    expect(after.takenOverBy).toBe(again.membership.token);
    expect((await again.log.get(tx.id))?.decision?.outcome).toBe('abort');
  });

  it('an instance whose lease was taken over is fenced: it hands its live transactions over and registers a new lease', async () => {
    const a = await started('a');
    const b = await started('b');
    const tx = await a.engine.begin();
    await a.engine.enlist(tx.id, 'db');
    const old = a.membership.token!;
    // b takes a's lease although a is alive (as after a long pause of a).
    expect(await b.log.leases.takeOver(old, b.membership.token!, { evenIfLive: true })).toBe(true);
    await waitFor('a notices it was fenced', () => a.fenced.includes(old));
    await waitFor('a holds a new lease', () => a.membership.token !== undefined && a.membership.token !== old && a.engine.ready);
    // Its live transaction is no longer its own: dropped here, b's now.
    expect(a.engine.runsHere(tx.id)).toBe(false);
    // (b took the lease by hand, not through its own check: it learns so from the leases.)
    await b.membership.refresh();
    await b.engine.admin.recover();
    expect((await b.log.get(tx.id))?.decision?.outcome).toBe('abort');
    // And it takes new work under its new token.
    const next = await a.engine.begin();
    expect((await a.log.get(next.id))?.owner).toBe(a.membership.token);
  });

  it('a one-phase COMMIT still on its way when another instance takes over cannot contradict its decision', async () => {
    const shared = new FakeParticipant('db');
    const a = await started('a', shared);
    const b = await started('b', shared);
    const tx = await a.engine.begin();
    const [branch] = [await a.engine.enlist(tx.id, 'db')];
    // The one-phase COMMIT leaves a, then takes its time to arrive (a paused process, a slow network).
    let arrive!: () => void;
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    shared.onCommit = () => arrived;
    const committing = a.engine.commit(tx.id).then(
      () => 'committed',
      (e: { code?: string }) => e.code,
    );
    await waitFor('the COMMIT is on its way', () => shared.ops('commit').includes(branch.gid));
    // It lands just after b has read the branch's state once it rolled it back, the worst moment.
    const readState = shared.status.bind(shared);
    shared.status = async (ref) => {
      const state = await readState(ref);
      if (!shared.ops('rollback').includes(ref.gid)) return state;
      arrive();
      await committing;
      return state;
    };
    const aToken = a.membership.token!;
    die(a);
    await waitFor('b takes a over and decides', async () => b.takeovers.flat().includes(aToken) && (await b.log.get(tx.id))?.decision !== undefined);
    // b rolled the lone branch back before judging it, so the late COMMIT was refused.
    expect(shared.ops('rollback')[0]).toBe(branch.gid);
    const answer = await committing;
    expect((await b.log.get(tx.id))?.decision?.outcome).toBe('abort');
    expect(shared.committed.has(branch.gid)).toBe(false);
    expect(answer).not.toBe('committed');
  });

  it('a graceful stop gives the lease up: another instance takes over at once', async () => {
    const a = await started('a');
    const b = await started('b');
    const token = a.membership.token!;
    await a.engine.stop();
    await waitFor('b takes a over', () => b.takeovers.flat().includes(token), LEASE_MS * 3);
  });
});

describe('the operator CLI offline on a shared log (--log postgres://…)', () => {
  it('lists the instances; recover takes over the expired leases and decides their transactions', async () => {
    const schema = `members_cli_${process.pid}`;
    const spec = `${url}?schema=${schema}`;
    const env = { TWOPC_ALLOW_VOLATILE: 'true', TWOPC_LEASE_MS: '2000' };
    const live = instance(schema, 'live');
    const dead = instance(schema, 'dead');
    try {
      await live.engine.start();
      await dead.engine.start();
      // Two branches each: a lone branch whose participant the CLI cannot ask would be left undecided (it may have committed in one phase).
      const mine = await live.engine.begin();
      await live.engine.enlist(mine.id, 'db');
      await live.engine.enlist(mine.id, 'db');
      const stranded = await dead.engine.begin();
      await dead.engine.enlist(stranded.id, 'db');
      await dead.engine.enlist(stranded.id, 'db');
      const deadToken = dead.membership.token!;
      die(dead);
      // Its lease (400 ms) expires; the live instance would take it over on its own: stop it from doing so first.
      die(live);
      await new Promise((r) => setTimeout(r, LEASE_MS * 2));

      const listed = await runCli(['instances', '--log', spec, '--json'], env);
      const report = JSON.parse(listed.stdout) as { store: string; instances: Array<{ token: number; state: string }> };
      expect({ code: listed.code, store: report.store, dead: report.instances.find((i) => i.token === deadToken)?.state }).toEqual({ code: 8, store: 'postgres', dead: 'expired' });

      const recovered = await runCli(['recover', '--log', spec, '--json', '--wait', '5000'], env);
      // Decided; the rollbacks are left (exit 8): the branches' participant ('db', in this process) is not configured for the CLI.
      expect({ code: recovered.code, report: JSON.parse(recovered.stdout) }).toMatchObject({ code: 8, report: { decidedAbort: 2, completed: 0 } });
      // Both leases had expired (the live one's timers were stopped too): the CLI took both over and gave its own lease up.
      expect((await live.log.get(stranded.id))?.decision?.outcome).toBe('abort');
      const after = await runCli(['instances', '--log', spec, '--json'], env);
      const states = (JSON.parse(after.stdout) as { instances: Array<{ name: string; state: string }> }).instances;
      expect(states.filter((i) => i.name.startsWith('twopc-cli:')).map((i) => i.state)).toEqual(['expired']);
      expect(states.filter((i) => !i.name.startsWith('twopc-cli:')).map((i) => i.state)).toEqual(['taken-over', 'taken-over']);
      expect(await runCli(['log', 'verify', '--log', spec], env)).toMatchObject({ code: 2 });
    } finally {
      await live.engine.stop().catch(() => undefined);
      await dead.engine.stop().catch(() => undefined);
    }
  });

  it('leaves a live instance its transactions', async () => {
    const schema = `members_cli_live_${process.pid}`;
    const spec = `${url}?schema=${schema}`;
    const env = { TWOPC_ALLOW_VOLATILE: 'true' };
    const live = instance(schema, 'live');
    try {
      await live.engine.start();
      const tx = await live.engine.begin();
      await live.engine.enlist(tx.id, 'db');
      const recovered = await runCli(['recover', '--log', spec, '--json', '--wait', '1000'], env);
      expect(recovered.code).toBe(0);
      expect(JSON.parse(recovered.stdout)).toMatchObject({ decidedAbort: 0, decidedCommit: 0 });
      expect((await live.log.get(tx.id))?.decision).toBeUndefined();
      await expect(live.engine.commit(tx.id)).resolves.toMatchObject({ state: 'committed' });
    } finally {
      await live.engine.stop().catch(() => undefined);
    }
  });
});
