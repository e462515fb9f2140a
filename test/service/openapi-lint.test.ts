import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestService } from './service-fixture';

const REDOCLY = path.join(path.dirname(require.resolve('@redocly/cli/package.json')), 'bin', 'cli.js');

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  version: string;
  problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer?: string }> }>;
}

/**
 * The document a running coordinator serves at /openapi.json, linted by
 * Redocly's own rules (`recommended-strict`: every recommended rule an error).
 * Any problem, error or warning, fails.
 */
describe('OpenAPI document lint (redocly)', () => {
  it('the served /openapi.json passes recommended-strict: no error, no warning', async () => {
    const svc = await startTestService();
    try {
      const doc = (await svc.call('GET', '/openapi.json')).body;
      const file = path.join(svc.dir, 'openapi.json');
      fs.writeFileSync(file, JSON.stringify(doc));
      // Exit code 1 on errors (the JSON report is still on stdout): read the report, not the code.
      const run = await promisify(execFile)(process.execPath, [REDOCLY, 'lint', file, '--extends', 'recommended-strict', '--format', 'json', '--max-problems', '1000'], {
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        maxBuffer: 16 * 1024 * 1024,
      }).catch((e: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''} (exit ${e.code})` }));
      const report = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as LintReport;
      expect(report.version).toBe('2.77.0');
      const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location.map((l) => l.pointer).join(', ')}: ${p.message}`);
      expect(problems).toEqual([]);
      expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
    } finally {
      await svc.close();
    }
  });
});
