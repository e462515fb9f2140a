import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Pool } from 'undici';
import { ClientCycle } from './client-cycle';
import { TickRecorder } from './tick-recorder';
import type { FromWorker, LoadStep, ToWorker, WorkerConfig } from './worker-protocol';

// A load worker: a forked process running its share of the API clients, so
// the generator is not one event loop that starves before the coordinator does.

// After a transport error (refused, reset) the client waits this long: a
// coordinator that is down must not turn the generator into a busy loop.
const ERROR_PAUSE_MS = 100;
const FLUSH_MS = 1000;

const send = (msg: FromWorker) => process.send?.(msg);
const recorder = new TickRecorder();
const held: string[] = [];
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

let config: WorkerConfig | undefined;
let pool: Pool | undefined;
let inFlight = 0;
let stopped = false;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A step's shared state in this worker, set up by the first client that reaches it. */
interface StepRun {
  step: LoadStep;
  endAt: number;
  claimed: number;
}

function startStep(step: LoadStep): StepRun {
  return { step, endAt: step.seconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + step.seconds * 1000, claimed: 0 };
}

/** Claims one cycle of a step, or says the step is over for this client. */
function claim(run: StepRun): boolean {
  if (stopped || Date.now() >= run.endAt) return false;
  if (run.step.action === 'open' && run.step.quota !== undefined && run.claimed >= run.step.quota) return false;
  if (run.step.action === 'abort-held' && held.length === 0) return false;
  run.claimed += 1;
  return true;
}

async function one(cycle: ClientCycle, step: LoadStep): Promise<void> {
  inFlight += 1;
  try {
    if (!(await cycle.run(step.action, step.phase))) await sleep(ERROR_PAUSE_MS);
  } finally {
    inFlight -= 1;
  }
}

/**
 * Closed-loop steps back to back: each client moves on to the next step on
 * its own, so a phase change (commit, then abort) leaves no gap while the
 * slowest client of the worker finishes.
 */
async function closedLoop(steps: LoadStep[], cycles: ClientCycle[]): Promise<void> {
  const runs: Array<StepRun | undefined> = steps.map(() => undefined);
  await Promise.all(cycles.map(async (cycle) => {
    for (let i = 0; i < steps.length; i++) {
      const run = (runs[i] ??= startStep(steps[i]));
      while (claim(run)) await one(cycle, run.step);
    }
  }));
}

async function runProgram(runId: number, startAt: number, steps: LoadStep[]): Promise<void> {
  const c = config!;
  stopped = false;
  await sleep(Math.max(0, startAt - Date.now()));
  const cycles = Array.from({ length: c.clients }, () => new ClientCycle(pool!, c, recorder, held));
  let i = 0;
  while (i < steps.length && !stopped) {
    if (steps[i].rate !== undefined) {
      await openLoop(startStep(steps[i]), cycles);
      i += 1;
      continue;
    }
    let j = i;
    while (j < steps.length && steps[j].rate === undefined) j += 1;
    await closedLoop(steps.slice(i, j), cycles);
    i = j;
  }
  send({ type: 'done', runId, held: held.length });
}

/** Starts `rate` cycles per second whatever their latency; one that finds every client busy is skipped and counted. */
async function openLoop(run: StepRun, cycles: ClientCycle[]): Promise<void> {
  const { step } = run;
  const idle = [...cycles];
  const running = new Set<Promise<void>>();
  const started = Date.now();
  let issued = 0;
  let over = false;
  while (!over) {
    const due = Math.floor(((Date.now() - started) / 1000) * step.rate!) - issued;
    for (let k = 0; k < due && !over; k++) {
      issued += 1;
      if (!claim(run)) {
        over = true;
        break;
      }
      const cycle = idle.pop();
      if (!cycle) {
        recorder.error(step.phase, 'arrival skipped: every client busy');
        continue;
      }
      const p: Promise<void> = one(cycle, step).finally(() => {
        idle.push(cycle);
        running.delete(p);
      });
      running.add(p);
    }
    if (stopped || Date.now() >= run.endAt) over = true;
    if (!over) await sleep(5);
  }
  await Promise.all(running);
}

setInterval(() => {
  const lagMaxMs = lag.max / 1e6;
  lag.reset();
  send({ type: 'tick', ticks: recorder.flush(), held: held.length, inFlight, lagMaxMs });
}, FLUSH_MS).unref();

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'init') {
    config = msg.config;
    pool = new Pool(config.baseUrl, {
      connections: config.clients + 1,
      pipelining: 1,
      connect: { timeout: config.connectTimeoutMs },
      keepAliveTimeout: 30_000,
      headersTimeout: config.requestTimeoutMs,
      bodyTimeout: config.requestTimeoutMs,
    });
    send({ type: 'ready' });
  } else if (msg.type === 'run') {
    void runProgram(msg.runId, msg.startAt, msg.steps);
  } else if (msg.type === 'stop') {
    stopped = true;
  }
});

// The parent is gone (killed outright): nothing else would end this process.
process.on('disconnect', () => process.exit(0));
