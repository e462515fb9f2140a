import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';

/** Runs migrations/<name>.sql at the service's start: plain SQL, idempotent (`create table if not exists`). */
export async function migrate(pool: Pool, name: 'orders' | 'inventory' | 'payments'): Promise<void> {
  await pool.query(fs.readFileSync(path.join(__dirname, '..', 'migrations', `${name}.sql`), 'utf8'));
}
