/**
 * @twopc/participant-sdk: a service's side of twopc two-phase commit, on the
 * service's own PostgreSQL pool (SPEC §6).
 *
 * @example
 * const orders = createParticipant({ name: 'orders', pool, coordinatorUrl, apiToken, secret, publicUrl: 'http://orders:8080/twopc' });
 * await orders.start();
 * app.use('/twopc', orders.router());
 * app.post('/orders', async (req, res) => {
 *   const id = await orders.enlist(transactionIdFrom(req)!, async (db) => (await db.query('INSERT INTO orders DEFAULT VALUES RETURNING id')).rows[0].id);
 *   res.status(201).json({ id });
 * });
 */
export { createParticipant, TwopcParticipant } from './participant';
export type { EnlistOptions } from './participant';
export type { CarriedResult } from './carried-enlistment';
export type { ProtocolHandler } from './protocol-handler';
export { DEFAULT_PRUNE_INTERVAL_MS, ENLIST_MODES, MAX_TIMER_MS } from './participant-options';
export type { EnlistMode, ParticipantOptions } from './participant-options';
export type { SelfSweepReport } from './self-sweep';
export * from './client';
export { problemMiddleware } from './problem-middleware';
export type { ProblemMiddlewareOptions } from './problem-middleware';
export { BranchClient } from './postgres';
export type { BranchPhase, BranchQueryable, BranchQueryResult, PostgresPool, PostgresPoolClient, PostgresQueryConfig, PostgresQueryResult } from './postgres';
