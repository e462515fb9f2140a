import { Agent, request } from 'undici';
import type { InstanceLease } from '../engine/ports/lease-store';
import { servesRequests } from '../cluster/lease-kind';
import type { Membership, OwnerState } from '../cluster/membership';
import { txIdOwner } from '../engine/ports/owned-tx-id';
import type { EngineLogger } from '../engine/ports/logger';
import type { TransactionEngine } from '../engine/transaction-engine';
import { errorMessage, isTxId } from '../engine/ports/protocol';
import type { DecisionLog } from '../engine/ports/decision-log';
import type { ForwardAnswer, ForwardRequest, TransactionForwarder } from './forwarding';
import { problem } from './answers';

/** Marks a relayed request: the instance that gets it answers it itself (one hop, never a loop). */
export const FORWARDED_HEADER = 'twopc-forwarded-by';

// Request headers the owner needs; everything else (hop-by-hop, host, length) is the relay's own.
const RELAYED_REQUEST_HEADERS = ['authorization', 'content-type', 'idempotency-key', 'accept'];
// Answer headers the caller needs.
const RELAYED_ANSWER_HEADERS = ['content-type', 'idempotent-replayed', 'retry-after', 'allow'];

export interface OwnerForwarderOptions {
  engine: TransactionEngine;
  log: DecisionLog;
  membership: Membership;
  logger: EngineLogger;
  /** How long a relayed call may take (a commit waits up to the engine's commitWaitMs). */
  timeoutMs: number;
  /** Told of each relayed request. */
  observer?: { relayed(outcome: 'relayed' | 'owner-unavailable'): void };
}

/**
 * Relays a request for a transaction owned by another live instance to that
 * instance (SPEC §7: a client may call any instance). The owner is read from
 * the transaction id (which carries its lease's fencing token) and the
 * leases: an owner whose lease expired is taken over first, and the request
 * is then answered here from the log.
 * An owner that holds its lease but cannot be reached gets `owner-unavailable`
 * (503, retry after the rest of its lease): answering here instead would
 * abort a transaction that may be committing at its owner.
 */
export class OwnerForwarder implements TransactionForwarder {
  private readonly agent: Agent;

  constructor(private readonly o: OwnerForwarderOptions) {
    this.agent = new Agent({ keepAliveTimeout: 30_000, connections: 64, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs, connect: { timeout: 2_000 } });
  }

  async forward(req: ForwardRequest): Promise<ForwardAnswer | undefined> {
    if (!isTxId(req.txId) || this.o.engine.runsHere(req.txId)) return undefined;
    const where = await this.owner(req.txId);
    // An in-process coordinator's (its lease's URL says so, see lease-kind.ts), live or not: it serves no
    // requests, and this instance never takes it over (it may lack its databases). Only a process of its
    // group finishes it; answering from the log here could abort it under its owner.
    if ((where?.kind === 'live' || where?.kind === 'expired') && !servesRequests(where.lease.url)) {
      return this.unavailable(req, where.lease, 'cannot be relayed: its owner is an in-process coordinator, which serves no requests', 'once a process of its group has finished it');
    }
    if (where?.kind !== 'live') return undefined;
    // Relayed here, yet another live instance owns it (views of the leases differ for a moment, or the
    // header was forged): one hop only, and answering from the log here could abort it under its owner.
    if (req.headers[FORWARDED_HEADER] !== undefined) return this.unavailable(req, where.lease, 'relayed here from another instance');
    return this.relay(req, where.lease);
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  /**
   * Where the transaction's owner stands. Its id names the owner's lease
   * (owned-tx-id.ts), and leases are forced: so a transaction whose begin
   * record a store crash lost (it is not forced), or that is not in the log
   * at all, still reaches its owner, which may be running it. Only an id
   * that names no lease — made before ids carried their owner, or made
   * under a lease since forgotten — is looked up in its begin record.
   * Undefined: nobody else owns it (answer here).
   */
  private async owner(txId: string): Promise<OwnerState | undefined> {
    const fromId = txIdOwner(txId);
    if (fromId !== undefined) {
      const where = await this.locate(fromId);
      if (where.kind !== 'unknown') return where;
    }
    const logged = (await this.o.log.get(txId))?.owner;
    return logged === undefined || logged === fromId ? undefined : this.locate(logged);
  }

  /** Where lease `token`'s transactions are now: an unknown lease is looked for again, an expired one is taken over first. */
  private async locate(token: number): Promise<OwnerState> {
    const where = this.o.membership.locate(token);
    if (where.kind === 'expired') await this.o.membership.takeOverNow(where.lease.token);
    else if (where.kind === 'unknown') await this.o.membership.refresh();
    else return where;
    return this.o.membership.locate(token);
  }

  private async relay(req: ForwardRequest, lease: InstanceLease): Promise<ForwardAnswer> {
    const { url: base, token } = lease;
    const headers: Record<string, string> = { [FORWARDED_HEADER]: String(this.o.membership.token ?? '') };
    for (const name of RELAYED_REQUEST_HEADERS) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    try {
      const answer = await request(new URL(req.url, base), {
        method: req.method as 'GET' | 'POST',
        headers,
        ...(req.body && req.body.length > 0 ? { body: req.body } : {}),
        dispatcher: this.agent,
      });
      const body = Buffer.from(await answer.body.arrayBuffer());
      const relayed: Record<string, string> = {};
      for (const name of RELAYED_ANSWER_HEADERS) {
        const value = answer.headers[name];
        if (typeof value === 'string') relayed[name] = value;
      }
      this.o.observer?.relayed('relayed');
      return { status: answer.statusCode, headers: relayed, body };
    } catch (e) {
      this.o.logger.warn({ txId: req.txId, owner: token, url: base, err: errorMessage(e) }, 'owner instance unreachable');
      return this.unavailable(req, lease, 'cannot be reached');
    }
  }

  /** 503 `owner-unavailable`: retry once the owner answers or its lease expired (another instance then takes it over). */
  private unavailable(req: ForwardRequest, lease: InstanceLease, why: string, retryWhen = 'once its lease expires another instance takes it over'): ForwardAnswer {
    this.o.observer?.relayed('owner-unavailable');
    const retryAfter = Math.max(1, Math.ceil((lease.expiresAt - Date.now()) / 1000));
    const answer = problem(
      503,
      'owner-unavailable',
      `transaction ${req.txId} is owned by coordinator instance ${lease.url} (lease ${lease.token}), and this request ${why}; retry: ${retryWhen}`,
      { owner: lease.url },
      { 'retry-after': String(retryAfter) },
    );
    return { status: answer.status, headers: { 'content-type': 'application/problem+json; charset=utf-8', ...answer.headers }, body: Buffer.from(JSON.stringify(answer.body)) };
  }
}
