import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Client } from 'undici';
import { CoordinatorProcess } from './coordinator-process';
import { HealthzProbe } from './healthz-probe';
import type { LoadOptions } from './load-options';
import { LoadWorkers } from './load-workers';
import { progressLine } from './progress';
import type { RunDir } from './run-dir';
import { Sampler } from './sampler';
import type { StubSpec } from './stub-protocol';
import { Stubs } from './stubs';
import { Timeline } from './timeline';
import type { LoadStep } from './worker-protocol';

/** What every scenario gets: the options, the run directory, the built coordinator, stderr. */
export interface RunContext {
  options: LoadOptions;
  runDir: RunDir;
  coordinatorEntry: string;
  log(line: string): void;
}

/** One coordinator with its stubs, generator and measurements. */
export interface RigSpec {
  /** Names the run's files and progress lines (several rigs run one after another in slow-participant). */
  label: string;
  stubs: StubSpec[];
  /** Stubs each transaction enlists, in this order. */
  enlist: string[];
  clients: number;
  /** API tokens etc. are random per rig. */
  txTimeoutMs?: number;
}

const API_TOKEN_BYTES = 24;
const CLIENTS_PER_WORKER = 250;

/**
 * A measured coordinator: `twopc serve` (compiled) on a file log in the run
 * directory, stub participants in their own process, the load workers, the
 * per-second sampler, the /healthz probe and the progress line. Everything
 * it starts is registered with the run directory's cleanup.
 */
export class Rig {
  private progressTimer?: NodeJS.Timeout;
  private readonly admin: Client;
  private closed?: Promise<void>;

  private constructor(
    readonly spec: RigSpec,
    readonly timeline: Timeline,
    readonly coordinator: CoordinatorProcess,
    readonly stubs: Stubs,
    readonly workers: LoadWorkers,
    private readonly sampler: Sampler,
    private readonly probe: HealthzProbe,
    readonly dataDir: string,
    private readonly adminToken: string,
  ) {
    this.admin = new Client(coordinator.baseUrl, { pipelining: 1, headersTimeout: 600_000, bodyTimeout: 600_000 });
  }

  static async start(ctx: RunContext, spec: RigSpec): Promise<Rig> {
    const { options, runDir } = ctx;
    const secret = randomBytes(API_TOKEN_BYTES).toString('hex');
    const apiToken = randomBytes(API_TOKEN_BYTES).toString('hex');
    const adminToken = randomBytes(API_TOKEN_BYTES).toString('hex');
    const stubs = await Stubs.start(runDir.path, secret, spec.stubs);
    runDir.track(stubs.pid);
    runDir.onCleanup(`${spec.label}: stub participants`, () => stubs.close());
    const dataDir = runDir.file(`${spec.label}-log`);
    fs.mkdirSync(dataDir);
    const coordinator = await CoordinatorProcess.start({
      entry: ctx.coordinatorEntry,
      dataDir,
      outputFile: runDir.file(`${spec.label}-coordinator.out`),
      apiToken,
      adminToken,
      participantSecret: secret,
      participantUrlAllowList: stubs.names.map((n) => stubs.url(n)),
      extraEnv: options.coordinatorEnv,
    });
    runDir.track(coordinator.pid);
    runDir.onCleanup(`${spec.label}: coordinator`, () => coordinator.stop());
    const workerCount = options.workers ?? Math.min(4, Math.max(1, Math.ceil(spec.clients / CLIENTS_PER_WORKER)));
    const txTimeoutMs = spec.txTimeoutMs ?? options.txTimeoutMs;
    const workers = await LoadWorkers.start(runDir.path, workerCount, {
      baseUrl: coordinator.baseUrl,
      token: apiToken,
      clients: spec.clients,
      participants: spec.enlist.map((name) => ({ name, url: stubs.url(name) })),
      prepare: options.prepare,
      ...(txTimeoutMs === undefined ? {} : { txTimeoutMs }),
      requestTimeoutMs: options.requestTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      leakNeedles: stubs.addresses(),
    });
    for (const pid of workers.pids) runDir.track(pid);
    runDir.onCleanup(`${spec.label}: load workers`, () => workers.close());
    const timeline = new Timeline();
    const sampler = new Sampler(timeline, coordinator.pid, coordinator.baseUrl, dataDir, options.scrapeSeconds);
    const probe = new HealthzProbe(coordinator.baseUrl, options.probeMs, (us, at) => timeline.addProbe(us, at));
    const rig = new Rig(spec, timeline, coordinator, stubs, workers, sampler, probe, dataDir, adminToken);
    workers.onTicks((ticks) => rig.timeline.addTicks(ticks));
    stubs.onTick((second, counts) => {
      rig.timeline.second(second).stubs = counts;
    });
    coordinator.onLogLine((level) => rig.timeline.addLogLine(level));
    rig.timeline.phase('start');
    sampler.start();
    probe.start();
    if (options.progressSeconds > 0) {
      rig.progressTimer = setInterval(() => ctx.log(progressLine(rig.timeline, spec.label, workers)), options.progressSeconds * 1000);
    }
    runDir.onCleanup(`${spec.label}: measurements`, () => rig.close());
    return rig;
  }

  /** Runs load steps (every step's requests are labelled with its phase). */
  async load(steps: LoadStep[], startInMs?: number): Promise<void> {
    const first = steps[0];
    this.timeline.phase(first.phase);
    // Phase marks follow the planned step ends; a quota step ends when the workers say so.
    const marks: NodeJS.Timeout[] = [];
    let at = startInMs ?? 100;
    for (let i = 1; i <= steps.length; i++) {
      const prev = steps[i - 1].seconds;
      if (prev === undefined) break;
      at += prev * 1000;
      // After the last step: clients finish the cycles in flight. Those seconds are not the load's (its throughput
      // is per planned second), but the cycles still count in the load's latency table.
      const name = i < steps.length ? steps[i].phase : 'drain';
      marks.push(setTimeout(() => this.timeline.phase(name), at));
    }
    try {
      await this.workers.run(steps, startInMs);
    } finally {
      marks.forEach(clearTimeout);
    }
  }

  /** No load for `seconds` (memory should come back down). */
  async idle(seconds: number, phase = 'idle'): Promise<void> {
    this.timeline.phase(phase);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  }

  /** An admin API call (e.g. POST /v1/admin/log/compact): status, parsed body, time taken. */
  async adminCall(method: 'GET' | 'POST', path: string): Promise<{ status: number; body: unknown; ms: number }> {
    const started = performance.now();
    const res = await this.admin.request({
      path,
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/json' },
      body: method === 'POST' ? '{}' : null,
    });
    const text = await res.body.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Left as text.
    }
    return { status: res.statusCode, body, ms: performance.now() - started };
  }

  /** Stops measuring and every process of the rig (idempotent). */
  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.progressTimer);
      this.timeline.endPhases();
      await this.probe.stop();
      await this.sampler.stop();
      await this.admin.destroy().catch(() => undefined);
      this.workers.stop();
      await this.workers.close();
      await this.coordinator.stop();
      await this.stubs.close();
    })();
    return this.closed;
  }
}
