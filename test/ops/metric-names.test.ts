import fs from 'node:fs';
import { RedisServer, describeIfRedisServer } from '../../harness/redis-server';
import { exposedNames, scrapeMetrics } from '../service/metrics-text';
import { startTestService } from '../service/service-fixture';
import { allPanels, dashboardExpressions, metricNames, OPS, readDashboard, ruleExpressions, ruleTestSeries } from './ops-files';

describe('the PromQL reader of the ops checks', () => {
  it('finds the metric names of an expression, and only those', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (phase, le) (rate(twopc_phase_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))')).toEqual(['twopc_phase_seconds_bucket']);
    expect(metricNames('count(twopc_ready{job=~"a"} == 0) or vector(0)')).toEqual(['twopc_ready']);
    expect(metricNames('sum without (instance) (rate(a_total[5m] offset 1h)) / on (job) group_left (x) b_total > bool 0.1')).toEqual(['a_total', 'b_total']);
    expect(metricNames('twopc_lease_held{job="twopc", instance="a"}')).toEqual(['twopc_lease_held']);
    expect(metricNames('sum(rate(typo_metric[$__rate_interval])) by (route)')).toEqual(['typo_metric']);
  });
});

describe('the Grafana dashboard', () => {
  const dashboard = readDashboard();
  const panels = allPanels(dashboard).filter((p) => p.type !== 'row');
  const DATASOURCE = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };

  it('is a dashboard model to import: one Prometheus data source input, used by every panel, target and variable', () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    expect([dashboard.uid, dashboard.title]).toEqual(['twopc-coordinator', 'twopc coordinator']);
    for (const p of panels) {
      expect([p.title, p.datasource]).toEqual([p.title, DATASOURCE]);
      for (const t of p.targets ?? []) expect([p.title, t.datasource]).toEqual([p.title, DATASOURCE]);
    }
    for (const v of dashboard.templating?.list ?? []) expect([v.name, v.datasource]).toEqual([v.name, DATASOURCE]);
  });

  it('has unique panel ids, a query in every panel, and panels inside the 24-column grid', () => {
    const ids = allPanels(dashboard).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect([p.title, (p.targets ?? []).length > 0]).toEqual([p.title, true]);
      for (const t of p.targets ?? []) expect([p.title, typeof t.expr === 'string' && t.expr.trim() !== '']).toEqual([p.title, true]);
      expect([p.title, p.gridPos!.x + p.gridPos!.w <= 24]).toEqual([p.title, true]);
    }
  });
});

describe('docs/operations.md', () => {
  it('has a section for every alert, where its runbook annotation points', () => {
    const doc = fs.readFileSync(OPS.doc, 'utf8');
    const headings = new Set([...doc.matchAll(/^#+ +(.+)$/gm)].map((m) => m[1].trim()));
    const runbooks = [...fs.readFileSync(OPS.rules, 'utf8').matchAll(/runbook: docs\/operations\.md#(\S+)/g)].map((m) => m[1]);
    const alerts = ruleExpressions().map((r) => r.alert);
    expect(runbooks).toEqual(alerts.map((a) => a.toLowerCase()));
    for (const alert of alerts) expect([alert, headings.has(alert)]).toEqual([alert, true]);
  });
});

// A renamed or removed metric must fail here, not on an operator's empty panel.
// A coordinator on a Redis log exports everything a file-log one does, plus its lease.
describeIfRedisServer('every metric the ops files name is one the coordinator exports', () => {
  let redis: RedisServer;
  let exported: Set<string>;

  beforeAll(async () => {
    redis = await RedisServer.start({ name: 'ops-metrics' });
    const shared = await startTestService({ log: `${redis.url}/?namespace=ops${process.pid}` });
    const file = await startTestService();
    try {
      exported = new Set([...exposedNames(await scrapeMetrics(shared.base)), ...exposedNames(await scrapeMetrics(file.base))]);
    } finally {
      await shared.close();
      await file.close();
    }
  }, 60_000);

  afterAll(async () => {
    await redis?.destroy();
  });

  const unknown = (expressions: Array<{ where: string; expr: string }>) =>
    expressions.flatMap(({ where, expr }) => metricNames(expr).filter((name) => !exported.has(name)).map((name) => `${where}: ${name}`));

  it('the scrape has the series the alerts need (sanity of the check itself)', () => {
    for (const name of ['twopc_ready', 'twopc_decision_log_failed', 'twopc_oldest_in_doubt_seconds', 'twopc_lease_held', 'twopc_phase_seconds_bucket', 'nodejs_eventloop_lag_p99_seconds']) {
      expect([name, exported.has(name)]).toEqual([name, true]);
    }
    expect(exported.has('twopc_no_such_metric')).toBe(false);
  });

  it('the dashboard', () => {
    const expressions = dashboardExpressions(readDashboard());
    expect(expressions.length).toBeGreaterThan(20);
    expect(unknown(expressions)).toEqual([]);
  });

  it('the alert rules and their unit tests', () => {
    const rules = ruleExpressions();
    expect(rules.length).toBeGreaterThanOrEqual(7);
    expect(unknown(rules)).toEqual([]);
    expect(unknown(ruleTestSeries())).toEqual([]);
  });
});
