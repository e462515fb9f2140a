import type { Pool, PoolClient } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { buildGid } from '../../participant-sdk/src/gid';
import type { BranchRef } from '../../coordinator/engine/ports/participant';
import type { PostgresPool, PostgresPoolClient, PostgresQueryConfig, PostgresQueryResult } from '../../participant-sdk/src/postgres/postgres-pool';

/** GID prefix of these suites; each suite's cluster is checked for leftovers of it after every test. */
export const PREFIX = 'tpg';

export function newBranch(participant: string, branchId = 1, txId: string = uuidv7()): BranchRef {
  return { txId, branchId, gid: buildGid(PREFIX, txId, branchId), participant };
}

type Fault = { match: RegExp; mode: 'lose-answer' | 'cut-while-running' | 'before'; whenRunning?: (pid: number) => Promise<void> };

/**
 * A `pg` pool seen through the adapter's structural type, recording every
 * statement and able to lose a connection at a chosen statement:
 * - `lose-answer`: the statement runs to completion, then the connection is
 *   cut before the answer is read (the caller sees a connection error);
 * - `cut-while-running`: the connection is cut while the statement runs
 *   server-side (`whenRunning` decides when, e.g. once it waits on a lock);
 * - `before`: `whenRunning` runs just before the statement is sent (someone
 *   else acting in between), then the statement runs as usual.
 */
export class TestPool implements PostgresPool {
  readonly statements: string[] = [];
  private readonly faults: Fault[] = [];
  private readonly wrappers = new WeakMap<PoolClient, PostgresPoolClient>();

  /**
   * `txStatus` (default true): connections tell their transaction status, as
   * pg's do. `oneWrapperPerConnection` (default false): each pg connection is
   * one object for life, as with a pg Pool, so what the adapter remembers per
   * connection is used again; by default each checkout is a new object.
   */
  constructor(
    readonly pg: Pool,
    private readonly options: { txStatus?: boolean; oneWrapperPerConnection?: boolean } = {},
  ) {}

  on(event: 'error', listener: (err: Error) => void): void {
    this.pg.on(event, listener);
  }

  removeListener(event: 'error', listener: (err: Error) => void): void {
    this.pg.removeListener(event, listener);
  }

  listenerCount(): number {
    return this.pg.listenerCount('error');
  }

  inject(fault: Fault): void {
    this.faults.push(fault);
  }

  count(match: RegExp): number {
    return this.statements.filter((s) => match.test(s)).length;
  }

  async connect(): Promise<PostgresPoolClient> {
    const client = await this.pg.connect();
    const known = this.options.oneWrapperPerConnection ? this.wrappers.get(client) : undefined;
    if (known) return known;
    const wrapper: PostgresPoolClient = {
      query: (text, values) => this.query(client, text, values),
      release: (err) => client.release(err),
      on: (event, listener) => client.on(event, listener),
      removeListener: (event, listener) => client.removeListener(event, listener),
      ...(this.options.txStatus === false ? {} : { getTransactionStatus: () => client.getTransactionStatus() }),
    };
    this.wrappers.set(client, wrapper);
    return wrapper;
  }

  private async query(client: PoolClient, textOrConfig: string | PostgresQueryConfig, values?: readonly unknown[]): Promise<PostgresQueryResult | PostgresQueryResult[]> {
    const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text;
    this.statements.push(text);
    const index = this.faults.findIndex((f) => f.match.test(text));
    if (index >= 0 && this.faults[index].mode === 'before') {
      const [fault] = this.faults.splice(index, 1);
      await fault.whenRunning?.(backendPid(client));
      return client.query(textOrConfig as string, values as unknown[]) as Promise<PostgresQueryResult | PostgresQueryResult[]>;
    }
    const run = client.query(textOrConfig as string, values as unknown[]) as Promise<PostgresQueryResult | PostgresQueryResult[]>;
    if (index < 0) return run;
    const [fault] = this.faults.splice(index, 1);
    if (fault.mode === 'lose-answer') {
      await run.catch(() => undefined);
      cut(client);
    } else {
      run.catch(() => undefined);
      await fault.whenRunning?.(backendPid(client));
      cut(client);
    }
    throw new Error('Connection terminated unexpectedly');
  }
}

// pg internals, for tests only: the socket under the client, and the backend's pid from its key data.
function cut(client: PoolClient): void {
  (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}

function backendPid(client: PoolClient): number {
  return (client as unknown as { processID: number }).processID;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
