import type Redis from 'ioredis';
import { loadIoredis } from './load-ioredis';

// An idle connection whose server vanished (a host gone without a FIN) is found by TCP keepalive probes after this.
const KEEPALIVE_DELAY_MS = 5_000;

/** The log's connection to `url`; it connects at once, and again after it is lost. */
export function openLogConnection(url: string, callTimeoutMs: number): Redis {
  const RedisClient = loadIoredis();
  return new RedisClient(url, {
    connectionName: 'twopc-decision-log',
    // A server that stops answering without closing the connection (a network dropping packets,
    // a frozen host) would hold every call until the kernel gives up on the socket, if ever:
    // commands fail after callTimeoutMs (the connection is then made again, see the log's
    // attemptFailed) and keepalive probes find dead idle connections. (Not ioredis's
    // socketTimeout: its timer outlives the connection it was set for and can later destroy the
    // next one.)
    connectTimeout: callTimeoutMs,
    commandTimeout: callTimeoutMs,
    keepAlive: KEEPALIVE_DELAY_MS,
    // How long a closed connection's socket may take to finish closing before it is destroyed.
    disconnectTimeout: Math.min(callTimeoutMs, 2_000),
    // Surface errors to the retry loop after a couple of reconnects instead of queueing for ever.
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => Math.min(times * 50, 1000),
    // Commands sent but unanswered when a connection drops are resent on the next one: safe, see APPLY_BATCH.
    autoResendUnfulfilledCommands: true,
  });
}
