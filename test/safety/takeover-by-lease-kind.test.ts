import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Pool } from 'pg';
import { inProcessLeaseUrl } from '../../coordinator/cluster/lease-kind';
import type { InstanceLease } from '../../coordinator/engine/ports/lease-store';
import { mintTxId } from '../../coordinator/engine/ports/owned-tx-id';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { createDecisionLog } from '../../coordinator/log/create-decision-log';
import type { DecisionLog } from '../../coordinator/engine/ports/decision-log';
import { buildGid } from '../../participant-sdk/src/gid';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { createParticipant, type TwopcParticipant } from '../../participant-sdk/src';
import { PgCluster } from '../../harness/pg-cluster';
import { API_TOKEN, SECRET, startTestService, waitFor, type TestService } from '../service/service-fixture';

/**
 * Review L1: a process took over leases whose transactions it could not
 * finish. A `twopc serve` instance took over an in-process application's
 * expired lease (it may not have that application's databases), and every
 * request for those transactions was then relayed to an URL that serves
 * nothing; an in-process coordinator took over serve instances' leases.
 *
 * A lease's URL now tells its kind (coordinator/cluster/lease-kind.ts):
 * serve instances take over only http(s) leases, an in-process coordinator
 * only leases of its own group (`in-process://<group>`); a serve instance
 * answers requests for an in-process lease's transactions 503
 * `owner-unavailable` at once; the SDK self-sweep skips such a transaction
 * and goes on with the others instead of ending its pass.
 *
 * Dead processes are their records in a shared PostgreSQL log: a lease
 * registered, not renewed, and one undecided transaction with a branch on a
 * database every process here has.
 */

const PREFIX = 'slk';
const LOG_DB = 'twopc_log';

describe('a process takes over only leases whose transactions it can finish', () => {
  let cluster: PgCluster;
  let schemas = 0;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-lease-kind' });
    for (const db of ['ledger', LOG_DB]) await cluster.createDatabase(db);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'ledger');
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });

  /** A fresh schema of the shared log, and a reader on it. */
  async function sharedLog(): Promise<{ spec: string; reader: DecisionLog }> {
    schemas += 1;
    const spec = `${cluster.connectionString(LOG_DB)}?schema=lease_kind_${schemas}`;
    const reader = createDecisionLog(spec, { allowVolatile: true, onWarning: () => undefined });
    await reader.open();
    closers.push(() => reader.close());
    return { spec, reader };
  }

  /** What a process that died leaves: its lease (expired), and one undecided transaction with a branch on `ledger`. */
  async function deadProcess(spec: string, name: string, url: string): Promise<{ token: number; txId: string }> {
    const log = createDecisionLog(spec, { allowVolatile: true, onWarning: () => undefined });
    await log.open();
    const lease = await log.leases!.register(name, url, 100);
    const txId = mintTxId(lease.token);
    const at = Date.now();
    await log.append({ type: 'begin', txId, at, expiresAt: at + 600_000, owner: lease.token });
    await log.append({ type: 'enlist', txId, at, branch: { branchId: 1, gid: buildGid(PREFIX, txId, 1), participant: 'ledger' } });
    await log.close();
    return { token: lease.token, txId };
  }

  async function expired(reader: DecisionLog, tokens: number[]): Promise<void> {
    await waitFor('the dead processes leases to expire', async () => {
      const view = await reader.leases!.view();
      return view.leases.filter((l) => tokens.includes(l.token)).every((l) => l.expiresAt < view.now);
    });
  }

  async function lease(reader: DecisionLog, token: number): Promise<InstanceLease> {
    return (await reader.leases!.view()).leases.find((l) => l.token === token)!;
  }

  async function tokenOf(reader: DecisionLog, name: string): Promise<number> {
    return (await reader.leases!.view()).leases.find((l) => l.name === name && l.takenOverBy === undefined)!.token;
  }

  async function serve(spec: string): Promise<TestService> {
    const service = await startTestService(
      { log: spec, allowVolatile: true, databases: { ledger: cluster.connectionString('ledger') }, instance: { name: 'serve-1', leaseMs: 10_000 } },
      { gidPrefix: PREFIX },
    );
    closers.push(() => service.close());
    return service;
  }

  async function inProcess(spec: string, instance: { name: string; group?: string; leaseMs?: number }): Promise<Coordinator> {
    const pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    const participant = new PostgresParticipant({ name: 'ledger', pool });
    await participant.start();
    const coordinator = await Coordinator.start({
      log: createDecisionLog(spec, { allowVolatile: true, onWarning: () => undefined }),
      databases: [participant],
      engine: { sweepIntervalMs: 0, gidPrefix: PREFIX },
      instance: { leaseMs: 10_000, ...instance },
    });
    closers.push(async () => {
      await coordinator.close();
      await participant.close();
      await pool.end();
    });
    return coordinator;
  }

  it('a serve instance takes over a dead serve instance, never a dead in-process application, and answers for its transactions 503 at once', async () => {
    const { spec, reader } = await sharedLog();
    const app = await deadProcess(spec, 'app-a', inProcessLeaseUrl('app'));
    const other = await deadProcess(spec, 'serve-0', 'http://127.0.0.1:9');
    await expired(reader, [app.token, other.token]);

    // Its start looks at every lease: the expired ones it may take over are taken then.
    const service = await serve(spec);
    const me = await tokenOf(reader, 'serve-1');
    expect({ other: (await lease(reader, other.token)).takenOverBy, app: (await lease(reader, app.token)).takenOverBy }).toEqual({ other: me, app: undefined });

    const show = await service.call('GET', `/v1/transactions/${app.txId}`);
    const abort = await service.call('POST', `/v1/transactions/${app.txId}/abort`);
    expect({ show: [show.status, show.body.code], abort: [abort.status, abort.body.code] }).toEqual({ show: [503, 'owner-unavailable'], abort: [503, 'owner-unavailable'] });
    expect(show.body.detail).toMatch(/in-process coordinator/);
    // Nothing decided for the application's transaction, still not taken over; the dead serve instance's is ended.
    await waitFor('the dead serve instance transaction decided', async () => (await reader.get(other.txId))?.decision !== undefined);
    expect({ app: (await reader.get(app.txId))?.decision, lease: (await lease(reader, app.token)).takenOverBy }).toEqual({ app: undefined, lease: undefined });
  });

  it('an in-process coordinator takes over only dead processes of its group: never a serve instance, never another group', async () => {
    const { spec, reader } = await sharedLog();
    const serveLease = await deadProcess(spec, 'serve-0', 'http://127.0.0.1:9');
    const otherGroup = await deadProcess(spec, 'billing-1', inProcessLeaseUrl('billing'));
    // No group given: the name is the group.
    const otherName = await deadProcess(spec, 'orders-0', inProcessLeaseUrl('orders-0'));
    const sameGroup = await deadProcess(spec, 'orders-1', inProcessLeaseUrl('orders'));
    await expired(reader, [serveLease.token, otherGroup.token, otherName.token, sameGroup.token]);

    await inProcess(spec, { name: 'orders-2', group: 'orders' });
    const me = await tokenOf(reader, 'orders-2');
    const takers = async (...tokens: number[]) => Promise.all(tokens.map(async (t) => (await lease(reader, t)).takenOverBy ?? null));
    expect(await takers(serveLease.token, otherGroup.token, otherName.token, sameGroup.token)).toEqual([null, null, null, me]);
    const decided = async (...ids: string[]) => Promise.all(ids.map(async (id) => (await reader.get(id))?.decision?.outcome ?? null));
    expect(await decided(serveLease.txId, otherGroup.txId, otherName.txId, sameGroup.txId)).toEqual([null, null, null, 'abort']);
  });

  it('two in-process coordinators of one group take over each other', async () => {
    const { spec, reader } = await sharedLog();
    const a = await inProcess(spec, { name: 'orders-a', group: 'orders', leaseMs: 400 });
    const b = await inProcess(spec, { name: 'orders-b', group: 'orders', leaseMs: 400 });
    const [tokenA, tokenB] = [await tokenOf(reader, 'orders-a'), await tokenOf(reader, 'orders-b')];

    // a stops (its lease expires at once): b's next check takes it over.
    await a.close();
    await waitFor('orders-b to take over orders-a', async () => (await lease(reader, tokenA)).takenOverBy === tokenB);
    // A new process of the group: it takes over b once b is gone.
    await inProcess(spec, { name: 'orders-c', group: 'orders', leaseMs: 400 });
    const tokenC = await tokenOf(reader, 'orders-c');
    await b.close();
    await waitFor('orders-c to take over orders-b', async () => (await lease(reader, tokenB)).takenOverBy === tokenC);
  });

  it("the SDK self-sweep skips a transaction whose owner cannot answer and goes on with the next one", async () => {
    const { spec } = await sharedLog();
    const app = await deadProcess(spec, 'app-a', inProcessLeaseUrl('app'));
    const service = await serve(spec);
    // A transaction the serve instance aborted: a prepared branch of it is rolled back by the sweep.
    const begun = await service.call('POST', '/v1/transactions', { timeoutMs: 60_000 });
    const aborted = begun.body.id as string;
    expect((await service.call('POST', `/v1/transactions/${aborted}/abort`)).status).toBe(200);

    const pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    const router = express();
    const server = await new Promise<Server>((resolve) => {
      const s = router.listen(0, '127.0.0.1', () => resolve(s));
    });
    const participant: TwopcParticipant = createParticipant({
      name: 'ledger',
      pool,
      coordinatorUrl: service.base,
      apiToken: API_TOKEN,
      secret: SECRET,
      publicUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/twopc`,
      gidPrefix: PREFIX,
      sweepIntervalMs: 0,
      pruneIntervalMs: 0,
      sweepGraceMs: 0,
    });
    router.use('/twopc', participant.router());
    await participant.start();
    closers.push(async () => {
      await participant.close();
      await new Promise((r) => server.close(r));
      await pool.end();
    });

    // Prepared in this order: the sweep (oldest first) meets the in-process application's branch first.
    const gids = [buildGid(PREFIX, app.txId, 1), buildGid(PREFIX, aborted, 1)];
    for (const [i, gid] of gids.entries()) {
      await cluster.withClient(async (c) => {
        await c.query('begin');
        await c.query('insert into items (id) values ($1)', [`item-${i}`]);
        await c.query(`prepare transaction '${gid}'`);
      }, 'ledger');
    }
    const report = await participant.sweepOnce();
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await cluster.withClient((c) => c.query(`rollback prepared '${gid}'`), 'ledger');
    expect({ rolledBack: report.rolledBack, left: report.left, unreachable: report.coordinatorUnreachable, prepared: left }).toEqual({
      rolledBack: 1,
      left: 1,
      unreachable: false,
      prepared: [gids[0]],
    });
  });
});
