import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dashboardExpressions, OPS, readDashboard, ruleExpressions } from './ops-files';

/** promtool (Debian's `prometheus` package): PROMTOOL_BIN, else `promtool` on PATH; undefined if there is none. */
function findPromtool(): string | undefined {
  const candidate = process.env.PROMTOOL_BIN || 'promtool';
  return spawnSync(candidate, ['--version'], { encoding: 'utf8' }).status === 0 ? candidate : undefined;
}

function promtool(bin: string, args: string[]): { status: number | null; output: string } {
  const run = spawnSync(bin, args, { encoding: 'utf8', cwd: OPS.root });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

const bin = findPromtool();
if (!bin) {
  const message = 'ops alert rules: skipped, no promtool (apt-get install prometheus, or set PROMTOOL_BIN)';
  // CI checks the rules every time: a CI machine without promtool is a broken CI machine, not a pass.
  if (process.env.CI === 'true') throw new Error(`${message} — and CI=true, where the rules must be checked`);
  console.warn(message);
}

(bin ? describe : describe.skip)('ops/prometheus alert rules, checked by promtool', () => {
  const run = (args: string[]) => promtool(bin!, args);

  it('promtool check rules accepts every rule', () => {
    const { status, output } = run(['check', 'rules', OPS.rules]);
    expect([status, output]).toEqual([0, expect.stringContaining(`SUCCESS: ${ruleExpressions().length} rules found`)]);
  });

  it('promtool test rules: each alert fires on its synthetic series and stays quiet on the harmless one', () => {
    const { status, output } = run(['test', 'rules', OPS.rulesTest]);
    expect([status, output]).toEqual([0, expect.stringContaining('SUCCESS')]);
  });

  it('the unit tests cover every alert, firing and quiet', () => {
    // Each `alertname:` line is followed by its `exp_alerts:`; `[]` is a quiet case.
    const lines = fs.readFileSync(OPS.rulesTest, 'utf8').split('\n');
    const cases = new Map<string, Set<'fires' | 'quiet'>>();
    lines.forEach((line, i) => {
      const name = /^\s*alertname:\s*(\S+)\s*$/.exec(line);
      if (!name) return;
      const expected = /^\s*exp_alerts:\s*(.*)$/.exec(lines[i + 1] ?? '');
      if (!expected) throw new Error(`twopc-alerts.test.yml:${i + 2}: exp_alerts must follow alertname`);
      const kinds = cases.get(name[1]) ?? new Set();
      kinds.add(expected[1].trim() === '[]' ? 'quiet' : 'fires');
      cases.set(name[1], kinds);
    });
    for (const { alert } of ruleExpressions()) expect([alert, [...(cases.get(alert) ?? [])].sort()]).toEqual([alert, ['fires', 'quiet']]);
  });

  it("every query of the dashboard is valid PromQL (promtool checks them as recording rules, Grafana's variables filled in)", () => {
    const expressions = dashboardExpressions(readDashboard());
    const rules = expressions.map(({ expr }, i) => {
      const filled = expr.replace(/\$__(?:rate_interval|interval|range)\b/g, '5m').replace(/\$\{?\w+\}?/g, '.*');
      // A JSON string is a YAML double-quoted scalar.
      return `      - record: twopc_dashboard:query_${i}\n        expr: ${JSON.stringify(filled)}`;
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-dashboard-promql-'));
    try {
      const file = path.join(dir, 'dashboard-queries.yml');
      fs.writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const { status, output } = run(['check', 'rules', file]);
      expect([status, output]).toEqual([0, expect.stringContaining(`SUCCESS: ${expressions.length} rules found`)]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
