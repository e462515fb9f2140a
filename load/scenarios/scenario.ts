import type { ScenarioDefaults } from '../load-options';
import type { Rig, RigSpec, RunContext } from '../rig';

/** A target of issue 16's must-show that a scenario measures. */
export interface Check {
  what: string;
  value: string;
  target: string;
  ok: boolean;
}

export interface ScenarioReport {
  /** Tables and lines for stdout. */
  text: string[];
  /** The scenario's fields of the final JSON line. */
  json: Record<string, unknown>;
  checks: Check[];
}

/** Starts a rig and remembers it (its per-second series goes to --out). */
export type StartRig = (spec: RigSpec) => Promise<Rig>;

/**
 * One named scenario of `npm run load`: issue 16's table, row by row.
 * Adding one means one file here and one line in `index.ts`.
 */
export interface Scenario {
  name: string;
  summary: string;
  defaults: ScenarioDefaults;
  run(ctx: RunContext, startRig: StartRig): Promise<ScenarioReport>;
}
