// A consumer of the SDK through import (this file is an ES module): a participant service on
// express whose branch the installed `twopc serve` prepares and commits.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pg from 'pg';
import { CoordinatorClient, createParticipant, transactionIdFrom, withTransaction } from '@twopc/participant-sdk';
import { TwopcError } from '@twopc/participant-sdk/client';

const env = (name: string): string => process.env[name] ?? '';
const pool = new pg.Pool({ connectionString: env('DB_URL') });
await pool.query('create table orders (id serial primary key, item text not null)');

const app = express();
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const orders = createParticipant({ name: 'orders', pool, coordinatorUrl: env('TWOPC_URL'), apiToken: env('TWOPC_API_TOKEN'), secret: env('PARTICIPANT_SECRET'), publicUrl: `${url}/twopc` });
await orders.start();
app.use('/twopc', orders.router());
// express.json() on this route only: the router reads its calls' raw bodies, whose signatures it checks.
app.post('/orders', express.json(), async (req, res, next) => {
  try {
    const id = await orders.enlist(transactionIdFrom(req)!, async (db) => (await db.query('insert into orders (item) values ($1) returning id', [req.body.item])).rows[0].id);
    res.status(201).json({ id });
  } catch (e) {
    next(e);
  }
});

const twopc = new CoordinatorClient({ url: env('TWOPC_URL'), token: env('TWOPC_API_TOKEN') });
const { id } = await twopc.begin();
const placed = await fetch(`${url}/orders`, { method: 'POST', headers: withTransaction(id, { 'content-type': 'application/json' }), body: JSON.stringify({ item: 'book' }) });
const outcome = await twopc.commit(id);
const items = (await pool.query<{ item: string }>('select item from orders')).rows.map((r) => r.item);
const sameErrorClass = new TwopcError('invalid-input', 'x') instanceof (await import('@twopc/participant-sdk')).TwopcError;

await twopc.close();
await orders.close();
server.close();
await pool.end();
console.log(JSON.stringify({ placed: placed.status, outcome: outcome.state, items, sameErrorClass }));
