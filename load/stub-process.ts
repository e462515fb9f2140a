import { StubParticipant } from './stub-participant';
import type { FromStubs, ToStubs } from './stub-protocol';

// The stub participants' own process: their answers must not wait for the
// load generator's or the sampler's event loop, nor skew the coordinator's.

const send = (msg: FromStubs) => process.send?.(msg);
const stubs = new Map<string, StubParticipant>();

process.on('message', (msg: ToStubs) => {
  if (msg.type === 'start') {
    void (async () => {
      const ports: Record<string, number> = {};
      for (const spec of msg.specs) {
        const stub = new StubParticipant(spec, msg.secret);
        ports[spec.name] = await stub.listen();
        stubs.set(spec.name, stub);
      }
      send({ type: 'listening', ports });
    })();
  } else if (msg.type === 'faults') {
    stubs.get(msg.name)?.setFaults(msg.faults);
  } else if (msg.type === 'totals') {
    send({ type: 'totals', stubs: [...stubs.values()].map((s) => s.totals()) });
  }
});

// Aligned on wall-clock seconds, so a tick's counts belong to the second that just ended.
const tick = () => {
  const second = Math.floor(Date.now() / 1000) - 1;
  send({ type: 'tick', second, stubs: [...stubs.values()].map((s) => s.takeSecond()) });
};
setTimeout(() => {
  tick();
  setInterval(tick, 1000).unref();
}, 1000 - (Date.now() % 1000)).unref();

process.on('disconnect', () => process.exit(0));
