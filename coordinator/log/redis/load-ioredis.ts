import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { TwopcError } from '../../engine/ports/protocol';

type RedisConstructor = new (url: string, options: RedisOptions) => Redis;

/**
 * ioredis, loaded when a Redis decision log first connects: it is an optional
 * peer dependency of twopc, so an installation on the file or PostgreSQL log
 * neither needs it nor loads it. Missing, it is a configuration error
 * (`invalid-config`, exit 3 in the CLI) that says what to install.
 */
export function loadIoredis(): RedisConstructor {
  let loaded: { default?: RedisConstructor } & RedisConstructor;
  try {
    // A plain require, not an import: the module is looked up only now, on first use.
    loaded = require('ioredis');
  } catch (e) {
    // Only ioredis itself missing; a broken installation of it is its own error.
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND' || !String((e as Error).message).includes("'ioredis'")) throw e;
    throw new TwopcError('invalid-config', 'the Redis decision log needs the package ioredis, which is not installed: npm install ioredis (an optional peer dependency of twopc)', { package: 'ioredis' }, { cause: e });
  }
  return loaded.default ?? loaded;
}
