import os from 'node:os';
import { ensureCoordinatorBuild } from './coordinator-build';
import { parseLoadOptions } from './load-options';
import { loadAverage } from './proc-stats';
import { Rig, type RunContext } from './rig';
import { RunDir } from './run-dir';
import { SCENARIOS } from './scenarios';
import type { ScenarioReport } from './scenarios/scenario';
import { writeSeries } from './series';
import { table } from './summary';

// `npm run load -- --scenario <name> …`: see BENCHMARKS.md ("Under load") and `--help`.

function checksText(report: ScenarioReport): string[] {
  if (report.checks.length === 0) return [];
  return ['', 'issue 16 targets:', table(['what', 'measured', 'target', ''], report.checks.map((c) => [c.what, c.value, c.target, c.ok ? 'ok' : 'NOT MET']))];
}

async function main(): Promise<number> {
  const options = parseLoadOptions(process.argv, SCENARIOS);
  const scenario = SCENARIOS.find((s) => s.name === options.scenario)!;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const coordinatorEntry = ensureCoordinatorBuild(options.build, log);
  const runDir = RunDir.create(options.keep);
  const rigs: Rig[] = [];
  const finish = async () => {
    for (const rig of rigs) await rig.close().catch(() => undefined);
    if (options.out) writeSeries(options.out, rigs);
    await runDir.cleanup();
  };
  let interrupted = false;
  // The listener stays: under npm/tsx a Ctrl-C can arrive twice, and a second one with no listener would skip the cleanup.
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${signal}: stopping the coordinator, stubs and workers; removing ${runDir.path}…`);
    void finish().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: RunContext = { options, runDir, coordinatorEntry, log };
  const load1 = loadAverage();
  log(`scenario ${scenario.name}: ${JSON.stringify({ clients: options.clients, seconds: options.seconds, idleSeconds: options.idleSeconds })}; run dir ${runDir.path}`);
  let report: ScenarioReport;
  try {
    report = await scenario.run(ctx, async (spec) => {
      const rig = await Rig.start(ctx, spec);
      rigs.push(rig);
      log(`${spec.label}: coordinator pid ${rig.coordinator.pid} at ${rig.coordinator.baseUrl}; stubs ${rig.stubs.names.map((n) => rig.stubs.url(n)).join(', ')}; ${rig.workers.clients.length} load workers`);
      return rig;
    });
  } catch (e) {
    const tails = rigs.map((r) => r.coordinator.tailText()).join('\n');
    await finish();
    throw new Error(`${e instanceof Error ? e.message : String(e)}${tails ? `\n${tails}` : ''}`);
  }
  const generatorLagMs = Math.max(0, ...rigs.map((r) => r.workers.maxLagMs));
  // A coordinator that died mid-run (out of memory) makes every number after it meaningless: say so first.
  const crashes = rigs
    .filter((r) => r.coordinator.unexpectedExit)
    .map((r) => ({ rig: r.spec.label, ...r.coordinator.unexpectedExit!, atS: Math.round((r.coordinator.unexpectedExit!.at - r.timeline.startedAt) / 1000), tail: r.coordinator.tailText(10) }));
  await finish();
  const machine = { cores: os.cpus().length, node: process.version, load1Start: load1, load1End: loadAverage() };
  const out = [
    `scenario ${scenario.name} (${options.clients} clients); machine: ${machine.cores} cores, load average ${machine.load1Start} at the start, ${machine.load1End} at the end; load generator's worst event-loop delay ${generatorLagMs.toFixed(0)} ms`,
    ...crashes.map((c) => `THE COORDINATOR (${c.rig}) EXITED ON ITS OWN after ${c.atS} s (${c.signal ?? `exit code ${c.code}`}):\n${c.tail}`),
    '',
    ...report.text,
    ...checksText(report),
    '',
    JSON.stringify({
      scenario: scenario.name,
      options: { clients: options.clients, seconds: options.seconds, idleSeconds: options.idleSeconds, branches: options.branches, prepare: options.prepare, rate: options.rate ?? null, active: options.active, coordinatorEnv: Object.keys(options.coordinatorEnv) },
      machine,
      generatorLagMaxMs: Math.round(generatorLagMs),
      coordinatorExits: crashes.map(({ tail: _tail, ...c }) => c),
      ...report.json,
      checks: report.checks,
    }),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  if (crashes.length > 0) return 2;
  return report.checks.every((c) => c.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`load: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  },
);
