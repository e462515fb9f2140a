import path from 'node:path';
import { runTs } from '../support/child';

// @opentelemetry/api is an optional peer dependency: without it, or with it but without an SDK
// registered by the application, the tracing helpers run the work and change nothing.
const PROBE = path.join(__dirname, 'no-op-probe.ts');
const NOTHING_TRACED = {
  span: 'ran',
  engineSpan: 'ran',
  failed: 'boom',
  traceparent: null,
  remote: null,
  query: { path: '/prepare', headers: {} },
};

describe('tracing when nothing traces', () => {
  it('without @opentelemetry/api installed', async () => {
    const result = await runTs(PROBE, { NODE_OPTIONS: `--require ${path.join(__dirname, 'without-otel-api.cjs')}` });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ apiInstalled: false, ...NOTHING_TRACED });
  }, 60_000);

  it('with the API but no SDK registered', async () => {
    const result = await runTs(PROBE, {});
    expect(JSON.parse(result.stdout)).toEqual({ apiInstalled: true, ...NOTHING_TRACED });
  }, 60_000);
});
