import { classifyPgError } from '../../participant-sdk/src/postgres/postgres-errors';

/** An error shaped like pg's DatabaseError. */
function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, errno: -1, syscall: 'connect' });
}

describe('classifyPgError', () => {
  it.each([
    ['42704', 'prepared transaction with identifier "x" does not exist', 'no-such-prepared'],
    ['42710', 'transaction identifier "x" is already in use', 'duplicate-gid'],
    ['55000', 'prepared transactions are disabled', 'prepared-transactions-disabled'],
    ['55000', 'prepared transaction with identifier "x" is busy', 'wrong-state'],
    ['25P02', 'current transaction is aborted, commands ignored until end of transaction block', 'wrong-state'],
    ['25P01', 'SAVEPOINT can only be used in transaction blocks', 'wrong-state'],
    ['53200', 'maximum number of prepared transactions reached', 'resources'],
    ['53300', 'sorry, too many clients already', 'resources'],
    ['22023', 'transaction identifier "x" is too long', 'invalid-value'],
    ['42501', 'permission denied to finish prepared transaction', 'permission'],
    ['28P01', 'password authentication failed for user "x"', 'permission'],
    ['0A000', 'cannot PREPARE a transaction that has operated on temporary objects', 'unsupported'],
    ['57P01', 'terminating connection due to administrator command', 'connection-lost'],
    ['57P02', 'terminating connection because of crash of another server process', 'connection-lost'],
    ['57P03', 'the database system is starting up', 'connection-lost'],
    ['08006', 'connection failure', 'connection-lost'],
    ['25P03', 'terminating connection due to idle-in-transaction timeout', 'connection-lost'],
    ['23505', 'duplicate key value violates unique constraint "u"', 'other'],
    ['40001', 'could not serialize access due to concurrent update', 'other'],
    ['57014', 'canceling statement due to statement timeout', 'other'],
  ])('maps SQLSTATE %s (%s) to %s', (code, message, kind) => {
    expect(classifyPgError(pgError(code, message))).toEqual({ kind, sqlState: code, message });
  });

  it.each(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH'])('treats socket error %s as a lost connection, without SQLSTATE', (code) => {
    const c = classifyPgError(socketError(code));
    expect(c.kind).toBe('connection-lost');
    expect(c.sqlState).toBeUndefined();
  });

  it.each([
    'Connection terminated unexpectedly',
    'Connection terminated',
    'Client has encountered a connection error and is not queryable',
    'Client was closed and is not queryable',
    'timeout exceeded when trying to connect',
  ])('treats the driver error "%s" as a lost connection', (message) => {
    expect(classifyPgError(new Error(message))).toEqual({ kind: 'connection-lost', message });
  });

  it('does not mistake an errno code for a SQLSTATE', () => {
    // 'EPIPE' has the shape of a SQLSTATE (five upper-case characters).
    expect(classifyPgError(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })).kind).toBe('connection-lost');
  });

  it('classifies anything else as other', () => {
    expect(classifyPgError(new Error('boom'))).toEqual({ kind: 'other', message: 'boom' });
    expect(classifyPgError('a string')).toEqual({ kind: 'other', message: 'a string' });
    expect(classifyPgError(undefined).kind).toBe('other');
  });
});
