import { OriginHealth, OriginUnresponsiveError } from '../../coordinator/participants/http/origin-health';

describe('origin health (participant-pools.ts gate)', () => {
  it('counts only failures of calls started after the last answer: calls that hung before a recovery do not close the gate after it', async () => {
    const health = new OriginHealth(3, 2);
    // Three calls go out and hang; then the origin recovers and answers a later call.
    const hung = [health.begin(), health.begin(), health.begin()];
    const probe = health.begin();
    health.done(true, probe);
    // The hung calls time out only now, after that answer: they say nothing new.
    for (const started of hung) health.done(false, started);
    expect(health.unresponsive).toBe(false);
    const calls = [health.begin(), health.begin(), health.begin()];
    for (const started of calls) health.done(true, started);
  });

  it('opens after that many calls in a row started since the last answer fail, then lets only the probes through', () => {
    const health = new OriginHealth(3, 2);
    for (let i = 0; i < 3; i += 1) health.done(false, health.begin());
    expect(health.unresponsive).toBe(true);
    const probes = [health.begin(), health.begin()];
    expect(() => health.begin()).toThrow(OriginUnresponsiveError);
    health.done(true, probes[0]);
    expect(health.unresponsive).toBe(false);
    health.done(false, probes[1]);
    expect(health.unresponsive).toBe(false);
    health.done(true, health.begin());
  });
});
