import os from 'node:os';
import path from 'node:path';
import { createDecisionLog } from '../../coordinator/log/create-decision-log';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { RedisDecisionLog } from '../../coordinator/log/redis/redis-decision-log';

function errorOf(fn: () => unknown): { code?: string; message: string; details?: Record<string, unknown> } | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e as { code?: string; message: string };
  }
}

describe('createDecisionLog', () => {
  it('picks the file store for file: specs and bare paths', () => {
    const a = createDecisionLog('file:./data');
    expect(a).toBeInstanceOf(FileDecisionLog);
    expect((a as FileDecisionLog).dir).toBe(path.resolve('./data'));
    const b = createDecisionLog(path.join(os.tmpdir(), 'twopc-x'));
    expect((b as FileDecisionLog).dir).toBe(path.join(os.tmpdir(), 'twopc-x'));
    expect((createDecisionLog('file:///var/lib/twopc') as FileDecisionLog).dir).toBe('/var/lib/twopc');
    expect((createDecisionLog('./data') as FileDecisionLog).kind).toBe('file');
  });

  it('picks the PostgreSQL store, schema from the URL or the options, password never in messages', () => {
    const log = createDecisionLog('postgresql://app:s3cret@db:5432/coord?schema=twopc_log&sslmode=disable');
    expect(log).toBeInstanceOf(PostgresDecisionLog);
    expect((log as PostgresDecisionLog).where).toBe('postgresql://app@db:5432/coord (schema twopc_log)');
    expect((createDecisionLog('postgres://db/coord', { postgres: { schema: 'other' } }) as PostgresDecisionLog).where).toBe('postgres://db/coord (schema other)');
    const clash = errorOf(() => createDecisionLog('postgres://db/coord?schema=a', { postgres: { schema: 'b' } }));
    expect(clash).toMatchObject({ code: 'invalid-config', message: 'log: schema is "a" in the URL but "b" in the options; give it once' });
    expect(errorOf(() => createDecisionLog('postgres://db/coord?schema=Bad-Name'))).toMatchObject({ code: 'invalid-config', details: { field: 'schema' } });
  });

  it('picks the Redis store, namespace from the URL or the options', () => {
    const log = createDecisionLog('redis://:pw@cache:6379/2?namespace=prod', { allowVolatile: true });
    expect(log).toBeInstanceOf(RedisDecisionLog);
    expect((log as RedisDecisionLog).where).toBe('redis://cache:6379/2 (namespace prod)');
    expect(createDecisionLog('rediss://cache:6380').kind).toBe('redis');
  });

  it('refuses anything else with invalid-config naming the field', () => {
    const accepted = 'file:<dir> (or a directory path), postgres://…, postgresql://…, redis://… or rediss://…';
    expect(errorOf(() => createDecisionLog('mysql://u:pw@h/db', { field: 'TWOPC_LOG' }))).toMatchObject({
      code: 'invalid-config',
      message: `TWOPC_LOG must be ${accepted}; got "mysql://u@h/db" (scheme mysql: is not a decision log store)`,
      details: { field: 'TWOPC_LOG' },
    });
    expect(errorOf(() => createDecisionLog('  '))).toMatchObject({ code: 'invalid-config', message: `log must be ${accepted}; got an empty value` });
    expect(errorOf(() => createDecisionLog('file:'))).toMatchObject({ code: 'invalid-config', message: expect.stringContaining('without a directory') });
    expect(errorOf(() => createDecisionLog('redis://[bad'))).toMatchObject({ code: 'invalid-config', message: expect.stringContaining('not a valid URL') });
    expect(errorOf(() => createDecisionLog('redis://h', { redis: { maxBatch: 0 } }))).toMatchObject({ code: 'invalid-config', message: 'redis decision log: maxBatch must be >= 1', details: { field: 'maxBatch' } });
  });
});
