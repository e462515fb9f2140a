import { Pool } from 'pg';
import { createParticipant, ParticipantOptions, TwopcError } from '../../participant-sdk/src';
import { PgCluster } from '../../harness/pg-cluster';
import { PREFIX, SECRET } from './sdk-fixture';

jest.setTimeout(30_000);

const valid = (pool: Pool): ParticipantOptions => ({
  name: 'orders',
  pool,
  coordinatorUrl: 'http://127.0.0.1:7070',
  secret: SECRET,
  publicUrl: 'http://127.0.0.1:8080/twopc/',
  gidPrefix: PREFIX,
});

function configError(make: () => unknown): TwopcError {
  try {
    make();
  } catch (e) {
    expect(e).toBeInstanceOf(TwopcError);
    expect((e as TwopcError).code).toBe('invalid-config');
    return e as TwopcError;
  }
  throw new Error('expected invalid-config');
}

describe('participant SDK: start and options', () => {
  it('refuses to start on a server with max_prepared_transactions = 0, before creating anything', async () => {
    const cluster = await PgCluster.start({ name: 'sdk-disabled', maxPreparedTransactions: 0 });
    const pool = new Pool({ ...cluster.connectionConfig(), max: 2 });
    const participant = createParticipant(valid(pool));
    try {
      const error = await participant.start().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TwopcError);
      expect(error).toMatchObject({ code: 'prepared-transactions-disabled' });
      expect((error as Error).message).toMatch(/max_prepared_transactions is 0/);
      expect((await pool.query("select 1 from pg_tables where tablename like 'twopc_%'")).rowCount).toBe(0);
      await expect(participant.enlist('01890a5d-ac96-774b-bcce-b302099a8057', async () => 1)).rejects.toMatchObject({ code: 'state-conflict' });
    } finally {
      await participant.close();
      await pool.end();
      await cluster.destroy();
    }
  });

  it('validates options once, naming the field', () => {
    const pool = new Pool();
    try {
      expect(configError(() => createParticipant({ ...valid(pool), name: 'has space' })).details.field).toBe('name');
      expect(configError(() => createParticipant({ ...valid(pool), secret: 'short' })).details.field).toBe('secret');
      expect(configError(() => createParticipant({ ...valid(pool), publicUrl: 'ftp://x' })).details.field).toBe('publicUrl');
      expect(configError(() => createParticipant({ ...valid(pool), coordinatorUrl: 'nope' })).details.field).toBe('coordinatorUrl');
      const urls = (coordinatorUrls: string[], coordinatorUrl?: string) => configError(() => createParticipant({ ...valid(pool), coordinatorUrl, coordinatorUrls }));
      expect(urls([]).message).toMatch(/coordinatorUrls must list at least one URL/);
      expect(urls(['http://a:7070', 'nope']).details.field).toBe('coordinatorUrls.1');
      expect(urls(['http://a:7070', 'http://a:7070/']).details.field).toBe('coordinatorUrls.1');
      expect(urls(['http://a:7070'], 'http://b:7070').message).toMatch(/coordinatorUrls cannot be given with coordinatorUrl/);
      expect(configError(() => createParticipant({ ...valid(pool), coordinatorUrl: undefined })).message).toMatch(/coordinatorUrl is required \(or coordinatorUrls/);
      createParticipant({ ...valid(pool), coordinatorUrl: undefined, coordinatorUrls: ['http://a:7070', 'http://b:7070/'] });
      expect(configError(() => createParticipant({ ...valid(pool), gidPrefix: "tsdk'" })).details.field).toBe('gidPrefix');
      expect(configError(() => createParticipant({ ...valid(pool), schema: 'Bad;Schema' })).details.field).toBe('schema');
      expect(configError(() => createParticipant({ ...valid(pool), mode: 'lazy' as 'held' })).details.field).toBe('mode');
      expect(configError(() => createParticipant({ ...valid(pool), sweepIntervalMs: -1 })).details.field).toBe('sweepIntervalMs');
      expect(configError(() => createParticipant({ ...valid(pool), pool: {} as Pool })).details.field).toBe('pool');
      const unknown = configError(() => createParticipant({ ...valid(pool), sweepEveryMs: 5 } as ParticipantOptions));
      expect(unknown.details.field).toBe('sweepEveryMs');
      expect(unknown.message).toMatch(/sweepEveryMs is not an option/);
    } finally {
      void pool.end();
    }
  });
});
