import type { AddressInfo } from 'node:net';
import express from 'express';
import { Pool } from 'pg';
import { createParticipant } from '../../../participant-sdk/src';
import { codeOf, emit, serveCommands } from './worker-io';

/**
 * One replica of a participant service (test/safety): its router on its own
 * port, enlisting held branches that add 1 to account 1 when told.
 * Env: DATABASE_URL, COORDINATOR_URL, SECRET, TOKEN, PREFIX.
 */
async function main(): Promise<void> {
  const env = process.env as Record<string, string>;
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: 4 });
  pool.on('error', () => undefined);
  const app = express();
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/twopc`;
  const participant = createParticipant({
    name: 'orders',
    pool,
    coordinatorUrl: env.COORDINATOR_URL,
    apiToken: env.TOKEN,
    secret: env.SECRET,
    publicUrl: base,
    gidPrefix: env.PREFIX,
    mode: 'held',
    sweepIntervalMs: 0,
    pruneIntervalMs: 0,
  });
  app.use('/twopc', participant.router());
  await participant.start();
  emit('ready', { base, pid: process.pid });
  serveCommands(
    async (command) => {
      if (command.cmd === 'enlist') {
        const txId = String(command.txId);
        try {
          const pid = await participant.enlist(txId, async (db) => {
            await db.query('update accounts set balance = balance + 1 where id = 1');
            return (await db.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
          });
          emit('enlisted', { txId, pid });
        } catch (e) {
          emit('enlisted', { txId, error: codeOf(e) });
        }
      }
    },
    async () => {
      await participant.close();
      server.closeAllConnections();
      server.close();
      await pool.end();
    },
  );
}

void main().catch((e: unknown) => {
  emit('failed', { message: e instanceof Error ? e.message : String(e) });
  process.exit(1);
});
