import { inSpan } from '../../participant-sdk/src/client';
import type { EngineTracer } from '../engine/ports/tracer';

/**
 * The engine's spans through OpenTelemetry (`@opentelemetry/api`, an optional
 * peer dependency): they go wherever the application's OpenTelemetry SDK
 * sends them, and cost next to nothing when it has none.
 */
export const otelTracer: EngineTracer = {
  span: (name, attributes, work) => inSpan(name, attributes, work, { scope: 'twopc' }),
};
