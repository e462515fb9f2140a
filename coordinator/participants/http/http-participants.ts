import { BATCH_FEATURE } from '../../../participant-sdk/src';
import type { Participant } from '../../engine/ports/participant';
import { HttpParticipant } from './http-participant';
import type { HttpParticipantOptions } from './http-participant-options';
import { ParticipantBatcher } from './participant-batcher';
import { ParticipantPools } from './participant-pools';

/**
 * Makes and caches the HTTP participant of each (name, url) that enlisted, all
 * sharing one set of per-origin pools. Its `forUrl` is the engine's
 * `UrlParticipantFactory`.
 *
 * @example
 * const http = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret });
 * const registry = new ParticipantRegistry(databases, http.forUrl);
 * // on shutdown, after engine.stop(): await http.close();
 */
/** Adapters are stateless and cheap to make again; the cache only saves allocations, so it is bounded. */
const MAX_CACHED = 10_000;

export class HttpParticipants {
  private readonly pools: ParticipantPools;
  private readonly cache = new Map<string, HttpParticipant>();
  /** Batchers of the URLs whose participants said at enlistment that they accept batches (BATCH_FEATURE). */
  private readonly batchers = new Map<string, ParticipantBatcher>();

  constructor(private readonly options: HttpParticipantOptions) {
    this.pools = new ParticipantPools(options);
  }

  /** Never throws: recovery calls it for every logged branch, and a bad URL must fail that branch's calls, not the pass. */
  readonly forUrl = (name: string, url: string): Participant => {
    const key = `${name}\n${url}`;
    let participant = this.cache.get(key);
    if (!participant) {
      participant = new HttpParticipant(name, url, this.pools, this.options, this.batcherOf);
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, participant);
    }
    return participant;
  };

  /**
   * The participant at `url` said, enlisting, which protocol forms it serves
   * (`accepts`). Kept in memory only: after a restart the coordinator uses
   * the per-call form, which every participant serves, until it enlists again.
   */
  noteAccepts(url: string, accepts: readonly string[] | undefined): void {
    if (!this.options.batching) return;
    // An enlist without it (an older or rolled-back SDK at this URL) ends batching to it.
    if (!accepts?.includes(BATCH_FEATURE)) {
      this.batchers.delete(url);
      return;
    }
    if (this.batchers.has(url)) return;
    const sender = new HttpParticipant('(batch)', url, this.pools, this.options);
    if (this.batchers.size >= MAX_CACHED) this.batchers.delete(this.batchers.keys().next().value!);
    const o = this.options;
    const batcher: ParticipantBatcher = new ParticipantBatcher((suffix, body, call) => sender.send('POST', suffix, body, call), {
      maxCalls: o.batchMaxCalls,
      inFlight: o.batchesInFlight,
      slowAfterMs: o.batchSlowAfterMs,
      maxAnswerBytes: o.maxAnswerBytes,
      // Only this batcher: the URL may have enlisted with batch again since, under a new one.
      notServed: () => {
        if (this.batchers.get(url) === batcher) this.batchers.delete(url);
      },
    });
    this.batchers.set(url, batcher);
  }

  private readonly batcherOf = (url: string): ParticipantBatcher | undefined => this.batchers.get(url);

  /** Participant services seen so far (name and url). */
  get size(): number {
    return this.cache.size;
  }

  async close(): Promise<void> {
    this.cache.clear();
    this.batchers.clear();
    await this.pools.close();
  }
}
