import type { Router } from 'express';
import { BranchBook } from './branch-book';
import { createBranchRouter } from './branch-router';
import type { ProtocolDeps } from './protocol-calls';
import { createProtocolHandler, type ProtocolHandler } from './protocol-handler';
import { BranchService } from './branch-service';
import { CoordinatorClient } from './coordinator-client';
import { runEnlisted } from './enlistment';
import { runCarried, type CarriedResult } from './carried-enlistment';
import { TwopcError, errorMessage } from './errors';
import type { EnlistMode, ParticipantOptions, ResolvedParticipantOptions } from './participant-options';
import { parseParticipantOptions } from './participant-options';
import { Periodic } from './periodic';
import { BranchClient, PostgresParticipant } from './postgres';
import type { SdkLogger } from './sdk-logger';
import { silentLogger } from './sdk-logger';
import { SelfSweep, SelfSweepReport } from './self-sweep';
import { inSpan, SDK_TRACE_SCOPE, TRACE_ATTRIBUTES } from './tracing';

/** Per-call options of {@link TwopcParticipant.enlist}. */
export interface EnlistOptions {
  /** Overrides the participant's `mode` for this branch. */
  mode?: EnlistMode;
}

type Lifecycle = 'new' | 'starting' | 'started' | 'closed';

/** How often branches this process no longer needs to remember are forgotten. */
const HOUSEKEEPING_MS = 60_000;

/**
 * A service's side of twopc (SPEC §6): enlists branches of its own database
 * in global transactions, answers the coordinator's calls through an express
 * router, and ends its own prepared branches by asking the coordinator.
 * Create it with {@link createParticipant}.
 */
export class TwopcParticipant {
  readonly name: string;
  private readonly options: ResolvedParticipantOptions;
  private readonly logger: SdkLogger;
  private readonly postgres: PostgresParticipant;
  private readonly coordinator: CoordinatorClient;
  private readonly ownsCoordinator: boolean;
  private readonly book = new BranchBook();
  private readonly service: BranchService;
  private readonly sweep: SelfSweep;
  private readonly sweeping: Periodic;
  private readonly pruning: Periodic;
  private readonly housekeeping: Periodic;
  private lifecycle: Lifecycle = 'new';

  constructor(options: ParticipantOptions) {
    const o = parseParticipantOptions(options);
    this.options = o;
    this.name = o.name;
    this.logger = o.logger ?? silentLogger;
    this.postgres = new PostgresParticipant({
      name: o.name,
      pool: o.pool,
      schema: o.schema,
      markerRetentionMs: o.markerRetentionMs,
      connectionLossWaitMs: o.connectionLossWaitMs,
      onConnectionError: (err) => this.logger.warn({ participant: o.name, err: err.message }, 'twopc: a database connection failed'),
    });
    this.ownsCoordinator = o.coordinator === undefined;
    this.coordinator = o.coordinator ?? new CoordinatorClient({ urls: o.coordinatorUrls, token: o.apiToken, timeoutMs: o.requestTimeoutMs });
    this.service = new BranchService(this.postgres, this.book);
    this.sweep = new SelfSweep({ ...o, postgres: this.postgres, service: this.service, coordinator: this.coordinator, book: this.book, logger: this.logger });
    const onError = (what: string) => (e: unknown) => this.logger.warn({ participant: o.name, err: errorMessage(e) }, `twopc: ${what} failed; retrying next interval`);
    this.sweeping = new Periodic(o.sweepIntervalMs, () => this.sweep.sweepOnce(), onError('self-sweep'));
    this.pruning = new Periodic(o.pruneIntervalMs, (signal) => this.postgres.pruneMarkers(undefined, { signal }), onError('marker pruning'));
    this.housekeeping = new Periodic(HOUSEKEEPING_MS, async () => this.book.forgetOld(), onError('forgetting old branches'));
  }

  /**
   * Checks that the database allows prepared transactions (`prepared-transactions-disabled`
   * otherwise), migrates `twopc_marker`, then starts the self-sweep and marker pruning.
   */
  async start(): Promise<void> {
    if (this.lifecycle !== 'new') throw new TwopcError('state-conflict', `participant "${this.name}" is already ${this.lifecycle}`);
    this.lifecycle = 'starting';
    try {
      await this.postgres.start();
    } catch (e) {
      this.lifecycle = 'new';
      throw e;
    }
    this.lifecycle = 'started';
    this.sweeping.start();
    this.pruning.start();
    this.housekeeping.start();
  }

  /**
   * Runs `work` as this service's branch of transaction `txId`: registers the
   * branch with the coordinator, runs the work in a branch transaction on a
   * connection of the pool, then (held) keeps that connection until the
   * coordinator asks the branch to prepare, or (eager) PREPAREs at once and
   * gives it back. Resolves with the work's result.
   *
   * If the work throws, the branch is rolled back and the error rethrown; its
   * vote becomes "no" with the error's message, so the transaction aborts when
   * it tries to commit. In eager mode a failed PREPARE throws TransactionAbortedError.
   *
   * @example
   * app.post('/orders', async (req, res) => {
   *   const txId = transactionIdFrom(req);
   *   const row = await orders.enlist(txId!, async (db) => (await db.query('INSERT INTO orders (item) VALUES ($1) RETURNING id', [req.body.item])).rows[0]);
   *   res.status(201).json(row);
   * });
   */
  async enlist<T>(txId: string, work: (client: BranchClient) => Promise<T>, options: EnlistOptions = {}): Promise<T> {
    this.assertStarted();
    const mode = options.mode ?? this.options.mode;
    if (mode !== 'held' && mode !== 'eager') throw new TwopcError('invalid-input', 'mode must be "held" or "eager"', { field: 'mode' });
    const deps = { ...this.options, postgres: this.postgres, coordinator: this.coordinator, book: this.book, logger: this.logger };
    return inSpan('twopc.participant.enlist', { [TRACE_ATTRIBUTES.txId]: txId, [TRACE_ATTRIBUTES.participant]: this.name }, () => runEnlisted(deps, txId, work, mode), { scope: SDK_TRACE_SCOPE });
  }

  /**
   * Carried registration (the request carries `twopc-carried: v1`,
   * `carriedRequested(req)`, and the coordinator offers it): runs `work` as
   * this service's branch of `txId` without calling the coordinator, holds
   * the branch, and resolves with the result and a signed registration that
   * the application's commit (or abort) must carry. Answer it in the response header
   * `twopc-registration` (`registrationHeaderValue`). Refused with
   * `state-conflict` when the coordinator does not offer it.
   *
   * @example
   * const { result, registration } = await orders.enlistCarried(txId, (db) => db.query('INSERT INTO orders ...'));
   * res.setHeader(REGISTRATION_HEADER, registrationHeaderValue(registration)).status(201).json(result.rows[0]);
   */
  async enlistCarried<T>(txId: string, work: (client: BranchClient) => Promise<T>): Promise<CarriedResult<T>> {
    this.assertStarted();
    const deps = { ...this.options, postgres: this.postgres, coordinator: this.coordinator, book: this.book, logger: this.logger };
    return inSpan('twopc.participant.enlist', { [TRACE_ATTRIBUTES.txId]: txId, [TRACE_ATTRIBUTES.participant]: this.name }, () => runCarried(deps, txId, work), { scope: SDK_TRACE_SCOPE });
  }

  /**
   * The express router the coordinator calls (`POST /prepare`, `/commit`,
   * `/rollback`, `GET /branches/:gid`); mount it where `publicUrl` points.
   *
   * @example
   * app.use('/twopc', orders.router()); // publicUrl: 'http://orders:8080/twopc'
   */
  router(): Router {
    return createBranchRouter(this.protocolDeps());
  }

  /**
   * The same calls as `router()`, as one plain `node:http` handler (no
   * express router on the path the coordinator calls on every transaction):
   * it answers paths below `publicUrl`'s path and hands anything else to
   * `next` (404 without one). Mount it on a bare server, in front of an app,
   * or as express or fastify middleware at the root.
   *
   * @example
   * const handler = orders.handler(); // publicUrl: 'http://orders:8080/twopc'
   * http.createServer((req, res) => handler(req, res, () => app(req, res))).listen(8080);
   */
  handler(): ProtocolHandler {
    return createProtocolHandler(this.protocolDeps(), new URL(this.options.publicUrl).pathname.replace(/\/+$/, ''));
  }

  private protocolDeps(): ProtocolDeps {
    return {
      name: this.name,
      gidPrefix: this.options.gidPrefix,
      secret: this.options.secret,
      maxBodyBytes: this.options.maxBodyBytes,
      service: this.service,
      isOpen: () => this.lifecycle === 'started',
    };
  }

  /** One self-sweep pass now (it also runs every `sweepIntervalMs`). */
  sweepOnce(): Promise<SelfSweepReport> {
    this.assertStarted();
    return this.sweep.sweepOnce();
  }

  /** Prunes markers older than `olderThanMs` (default `markerRetentionMs`) now; returns how many. */
  pruneMarkers(olderThanMs?: number): Promise<number> {
    this.assertStarted();
    return this.postgres.pruneMarkers(olderThanMs);
  }

  /**
   * Stops the sweep and pruning, rolls back branches still held (never
   * prepared) and gives their connections back. Prepared branches stay
   * prepared: the coordinator's decision, or the next start's self-sweep,
   * ends them. Does not end the pool.
   */
  async close(): Promise<void> {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closed';
    await Promise.all([this.sweeping.stop(), this.pruning.stop(), this.housekeeping.stop()]);
    this.book.clearTimers();
    await this.postgres.close();
    if (this.ownsCoordinator) await this.coordinator.close();
  }

  private assertStarted(): void {
    if (this.lifecycle === 'started') return;
    if (this.lifecycle === 'closed') throw new TwopcError('shutting-down', `participant "${this.name}" is closed`);
    throw new TwopcError('state-conflict', `participant "${this.name}" is not started: call start() first`);
  }
}

/**
 * Creates a participant for a service's own PostgreSQL database (SPEC §6).
 * Options are validated once; an invalid one throws `invalid-config` naming it.
 *
 * @example
 * const orders = createParticipant({
 *   name: 'orders', pool: new Pool({ connectionString: process.env.DATABASE_URL }),
 *   coordinatorUrl: 'http://twopc:7070', apiToken: process.env.TWOPC_TOKEN,
 *   secret: process.env.TWOPC_PARTICIPANT_SECRET!, publicUrl: 'http://orders:8080/twopc',
 * });
 * await orders.start();
 * app.use('/twopc', orders.router());
 */
export function createParticipant(options: ParticipantOptions): TwopcParticipant {
  return new TwopcParticipant(options);
}
