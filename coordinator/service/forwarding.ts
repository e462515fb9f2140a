import type { IncomingHttpHeaders } from 'node:http';

/** A `/v1/transactions/:id…` request, as the coordinator instance that received it saw it. */
export interface ForwardRequest {
  txId: string;
  method: string;
  /** Path and query, as received (`/v1/transactions/<id>/commit`). */
  url: string;
  headers: IncomingHttpHeaders;
  /** The exact body bytes (so the owner's Idempotency-Key digest is the same); absent for GET. */
  body?: Buffer;
}

/** The owner's answer, relayed as is. */
export interface ForwardAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Several coordinator instances on one shared store (SPEC §7): a request for a
 * transaction that another live instance owns is relayed to that instance.
 * `forward` resolves undefined when this instance must answer it itself (it
 * owns the transaction, took it over, or nobody owns it).
 */
export interface TransactionForwarder {
  forward(request: ForwardRequest): Promise<ForwardAnswer | undefined>;
}
