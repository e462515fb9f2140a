import Redis from 'ioredis';
import { RedisDecisionLog, type RedisDecisionLogOptions } from '../../coordinator/log/redis/redis-decision-log';
import { RedisServer, describeIfRedisServer } from '../harness/redis-server';
import { describeDecisionLogConformance } from './conformance';

let namespaces = 0;
const freshNamespace = () => `t${process.pid}-${++namespaces}`;

/** Deletes every key of a namespace (all under one hash tag). */
async function dropNamespace(url: string, namespace: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const keys = await redis.keys(`{twopc:${namespace}}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

describeIfRedisServer('RedisDecisionLog on a throwaway redis-server (appendfsync always)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start({ name: 'redislog' });
  });
  afterAll(async () => {
    await server?.destroy();
  });

  const store = (namespace: string, options: Partial<RedisDecisionLogOptions> = {}) => new RedisDecisionLog({ url: server.url, namespace, ...options });

  describeDecisionLogConformance(
    'RedisDecisionLog',
    async () => {
      const namespace = freshNamespace();
      return {
        create: (s) => store(namespace, s),
        destroy: () => dropNamespace(server.url, namespace),
        crash: () => server.restart(),
      };
    },
    { sharedBackend: true, crash: true },
  );
});
