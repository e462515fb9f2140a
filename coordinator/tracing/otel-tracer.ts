import { inSpan, tracingActive } from '../../participant-sdk/src/client';
import type { EngineTracer } from '../engine/ports/tracer';

/**
 * The engine's spans through OpenTelemetry (`@opentelemetry/api`, an optional
 * peer dependency): they go wherever the application's OpenTelemetry SDK
 * sends them. Without one registered when the engine starts, the engine
 * does without it (ports/tracer.ts, `active`).
 */
export const otelTracer: EngineTracer = {
  span: (name, attributes, work) => inSpan(name, attributes, work, { scope: 'twopc' }),
  active: tracingActive,
};
