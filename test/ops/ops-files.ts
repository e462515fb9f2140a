import fs from 'node:fs';
import path from 'node:path';

/** The operations files of the project (dashboard, alert rules and their tests, the doc). */
export const OPS = {
  root: path.resolve(__dirname, '../..'),
  dashboard: path.resolve(__dirname, '../../ops/grafana/twopc-dashboard.json'),
  rules: path.resolve(__dirname, '../../ops/prometheus/twopc-alerts.yml'),
  rulesTest: path.resolve(__dirname, '../../ops/prometheus/twopc-alerts.test.yml'),
  doc: path.resolve(__dirname, '../../docs/operations.md'),
};

/** One PromQL expression of the ops files, with where it comes from (for messages). */
export interface OpsExpression {
  where: string;
  expr: string;
}

interface DashboardTarget {
  expr?: unknown;
  refId?: unknown;
  datasource?: unknown;
}
export interface DashboardPanel {
  id?: unknown;
  type?: unknown;
  title?: unknown;
  datasource?: unknown;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}
export interface Dashboard {
  __inputs?: Array<{ name?: unknown; type?: unknown; pluginId?: unknown }>;
  uid?: unknown;
  title?: unknown;
  panels: DashboardPanel[];
  templating?: { list: Array<{ name?: unknown; type?: unknown; datasource?: unknown; query?: unknown; definition?: unknown }> };
}

export function readDashboard(): Dashboard {
  return JSON.parse(fs.readFileSync(OPS.dashboard, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/**
 * The PromQL of the dashboard: each panel target's `expr`, and the metric
 * selector of each `label_values(selector, label)` variable query.
 */
export function dashboardExpressions(dashboard: Dashboard): OpsExpression[] {
  const out: OpsExpression[] = [];
  for (const panel of allPanels(dashboard)) {
    for (const t of panel.targets ?? []) out.push({ where: `dashboard panel ${String(panel.id)} "${String(panel.title)}" target ${String(t.refId)}`, expr: String(t.expr ?? '') });
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const query = typeof v.query === 'object' && v.query !== null ? (v.query as { query?: unknown }).query : v.query;
    const selector = /^\s*label_values\((.*),\s*\w+\s*\)\s*$/.exec(String(query));
    if (!selector) throw new Error(`dashboard variable ${String(v.name)}: only label_values(selector, label) queries are checked, got ${String(query)}`);
    out.push({ where: `dashboard variable ${String(v.name)}`, expr: selector[1] });
  }
  return out;
}

/** The alert rules' names and expressions. Each `expr` is one line (the file says so, and this refuses a block scalar). */
export function ruleExpressions(): Array<OpsExpression & { alert: string }> {
  const out: Array<OpsExpression & { alert: string }> = [];
  let alert = '';
  for (const [i, line] of fs.readFileSync(OPS.rules, 'utf8').split('\n').entries()) {
    const name = /^\s*- alert:\s*(\S+)\s*$/.exec(line);
    if (name) alert = name[1];
    const expr = /^\s*expr:\s*(.*)$/.exec(line);
    if (!expr) continue;
    if (expr[1] === '' || /^[|>]/.test(expr[1])) throw new Error(`twopc-alerts.yml:${i + 1}: keep expr on one line (the metric-name check reads it)`);
    out.push({ where: `twopc-alerts.yml:${i + 1} (${alert})`, alert, expr: expr[1].trim() });
  }
  return out;
}

/** The series of the rules' unit tests (`series: 'name{labels}'`). */
export function ruleTestSeries(): OpsExpression[] {
  const out: OpsExpression[] = [];
  for (const [i, line] of fs.readFileSync(OPS.rulesTest, 'utf8').split('\n').entries()) {
    const series = /^\s*- series:\s*'([^']*)'\s*$/.exec(line);
    if (series) out.push({ where: `twopc-alerts.test.yml:${i + 1}`, expr: series[1] });
  }
  return out;
}

// Words of PromQL that are neither metrics nor followed by "(".
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'inf', 'nan']);

/**
 * The metric names an expression selects: what is left once strings, label
 * matchers, ranges, label lists (`by (…)`, `on (…)`, …), `offset`, Grafana
 * variables, numbers and calls (`rate(`, `sum (`) are taken out.
 *
 * @example
 * metricNames('histogram_quantile(0.99, sum by (le) (rate(x_bucket{job=~"$job"}[$__rate_interval])))') // ['x_bucket']
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ')
    .replace(/\b(?:group_left|group_right)\b/gi, ' ')
    .replace(/\boffset\s+-?\w+/gi, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/\d[\w.]*|([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (name === undefined || call !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}
