import type { DecisionLog } from './ports/decision-log';
import type { BranchRef, Participant } from './ports/participant';
import { TRACE_ATTRIBUTES as A, type EngineTracer } from './ports/tracer';

/**
 * The engine's seams, traced: every decision (the register's write, whoever
 * makes it: the engine, a timeout, recovery, a sweep, an operator) and every
 * call to a participant (each branch's prepare, phase 2, one-phase commit)
 * becomes a span, a child of whatever step made it. The ports stay as they
 * are; the engine wraps what it was given (engine-context.ts).
 */

// The target's own members, bound to it (a store may keep private fields, which a proxy cannot reach).
function overriding<T extends object>(target: T, overrides: Partial<T>): T {
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(t, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof T];
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      if (!bound.has(prop)) bound.set(prop, value.bind(t));
      return bound.get(prop);
    },
  });
}

/** The decision log whose `decide` is a span: the decision asked for, and the one that won the register. */
export function tracedLog(log: DecisionLog, tracer: EngineTracer): DecisionLog {
  const decide: DecisionLog['decide'] = (decision) =>
    tracer.span('twopc.decide', { [A.txId]: decision.txId, [A.outcome]: decision.outcome, [A.source]: decision.source }, async (annotate) => {
      const winner = await log.decide(decision);
      annotate({ 'twopc.decision.winner': winner.outcome, 'twopc.decision.winner_source': winner.source });
      return winner;
    });
  return overriding(log, { decide });
}

/** A participant whose calls are spans, named for the protocol step, with the branch's ids. */
export function tracedParticipant(participant: Participant, tracer: EngineTracer): Participant {
  const ids = (b: BranchRef) => ({ [A.txId]: b.txId, [A.gid]: b.gid, [A.branchId]: b.branchId, [A.participant]: participant.name });
  return overriding(participant, {
    prepare: (b) =>
      tracer.span('twopc.prepare', ids(b), async (annotate) => {
        const vote = await participant.prepare(b);
        annotate({ [A.vote]: vote.vote });
        return vote;
      }),
    commit: (b, options) => tracer.span(options?.onePhase ? 'twopc.commit.one_phase' : 'twopc.phase2.commit', ids(b), () => participant.commit(b, options)),
    rollback: (b) => tracer.span('twopc.phase2.rollback', ids(b), () => participant.rollback(b)),
  });
}
