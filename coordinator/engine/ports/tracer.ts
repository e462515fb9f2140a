/** What a span says about its step (transaction id, GID, participant, vote, outcome); undefined values are left out. */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

/**
 * Traces the engine's steps: the engine runs each step (begin, enlist,
 * commit, each branch's prepare and phase 2, the decision's write, recovery)
 * through `span`. The engine never depends on it: the default runs the work
 * and nothing else; the OpenTelemetry adapter is coordinator/tracing/.
 */
export interface EngineTracer {
  /** Runs `work` as a span named `name`, a child of the active one; `annotate` adds what is learned on the way. */
  span<T>(name: string, attributes: SpanAttributes, work: (annotate: (more: SpanAttributes) => void) => Promise<T>): Promise<T>;
  /**
   * False when nothing would record the spans (no tracing SDK registered):
   * the engine then does without this tracer, and its wrappers' cost, for its
   * whole life. Absent: always active.
   */
  active?(): boolean;
}

export const noTracing: EngineTracer = { span: (_name, _attributes, work) => work(() => undefined) };

/** The attribute names of twopc's spans, shared with the participant SDK's spans. */
export { TRACE_ATTRIBUTES } from '../../../participant-sdk/src/client';
