import { TwopcError } from './errors';
import { isTxId } from './gid';
import { TRANSACTION_HEADER } from './wire';

/**
 * Headers for an outgoing request that carries the transaction to another
 * service (SPEC §6): a copy of `headers` with `twopc-transaction` set.
 *
 * @example
 * await fetch(`${ordersUrl}/orders`, { method: 'POST', headers: withTransaction(txId, { 'content-type': 'application/json' }), body });
 */
export function withTransaction(txId: string, headers: Record<string, string> = {}): Record<string, string> {
  if (!isTxId(txId)) throw new TwopcError('invalid-input', `txId must be a lower-case UUID (got ${JSON.stringify(txId)})`, { field: 'txId' });
  const copy: Record<string, string> = {};
  // A differently-cased copy of the header would travel alongside ours.
  for (const [name, value] of Object.entries(headers)) if (name.toLowerCase() !== TRANSACTION_HEADER) copy[name] = value;
  copy[TRANSACTION_HEADER] = txId;
  return copy;
}

/** The part of an incoming request the helper reads: an express `Request` or a node `IncomingMessage` fits. */
export interface RequestWithHeaders {
  headers: Record<string, string | string[] | undefined>;
}

/**
 * The transaction id an incoming request carries in `twopc-transaction`, or
 * undefined when it carries none. A malformed or repeated header throws
 * `invalid-input` naming the header (`problemOf` makes it a 400 problem).
 *
 * @example
 * app.post('/orders', async (req, res) => {
 *   const txId = transactionIdFrom(req);
 *   if (!txId) return res.status(400).send('twopc-transaction header required');
 *   const order = await participant.enlist(txId, (db) => db.query('INSERT INTO orders ...'));
 *   res.status(201).json(order.rows[0]);
 * });
 */
export function transactionIdFrom(req: RequestWithHeaders): string | undefined {
  const value = req.headers[TRANSACTION_HEADER];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !isTxId(value.trim())) {
    throw new TwopcError('invalid-input', `${TRANSACTION_HEADER} must be one lower-case UUID`, { field: TRANSACTION_HEADER });
  }
  return value.trim();
}
