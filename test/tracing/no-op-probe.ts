import { currentTraceparent, inSpan, withRemoteParent, withTraceQuery } from '../../participant-sdk/src/client';
import { otelTracer } from '../../coordinator/tracing/otel-tracer';

// Run by test/tracing/no-op.test.ts: what the tracing helpers do when nothing traces.
async function main(): Promise<void> {
  const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const apiInstalled = (() => {
    try {
      require.resolve('@opentelemetry/api');
      return true;
    } catch {
      return false;
    }
  })();
  const result = {
    apiInstalled,
    span: await inSpan('probe', { a: 1 }, async (annotate) => {
      annotate({ b: 2 });
      return 'ran';
    }),
    engineSpan: await otelTracer.span('probe', {}, async () => 'ran'),
    failed: await inSpan('probe', {}, async () => Promise.reject(new Error('boom'))).catch((e: Error) => e.message),
    traceparent: currentTraceparent() ?? null,
    remote: withRemoteParent(parent, () => currentTraceparent() ?? null),
    query: withTraceQuery('/prepare'),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

void main();
