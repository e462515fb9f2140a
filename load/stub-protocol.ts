/** The protocol calls a stub participant answers (SPEC §6), and `other` for anything else. */
export const STUB_OPS = ['prepare', 'commit', 'rollback', 'status', 'other'] as const;
export type StubOp = (typeof STUB_OPS)[number];

/** How a stub misbehaves. */
export interface StubFaults {
  /** Share of calls (of `delayOps`) answered only after `delayMs`. */
  delayFraction: number;
  delayMs: number;
  delayOps: StubOp[];
  /** Accept connections and read requests, never answer (until the stub closes). */
  neverAnswer: boolean;
}

export const NO_FAULTS: StubFaults = Object.freeze({ delayFraction: 0, delayMs: 0, delayOps: ['prepare' as StubOp], neverAnswer: false });

export interface StubSpec {
  name: string;
  faults: StubFaults;
  /** Check each call's `twopc-signature` (answer 401 when wrong), as the SDK does. */
  verify: boolean;
}

/** What one stub saw, in one second or in total. */
export interface StubCounts {
  name: string;
  /** Calls received, by op. */
  calls: Record<StubOp, number>;
  /** Calls answered (a never-answering stub answers none). */
  answered: number;
  delayed: number;
  badSignatures: number;
  /** TCP connections accepted. */
  accepted: number;
  /** Connections open now, and the most at once. */
  open: number;
  maxOpen: number;
}

export type ToStubs =
  | { type: 'start'; secret: string; specs: StubSpec[] }
  | { type: 'faults'; name: string; faults: StubFaults }
  | { type: 'totals' };

export type FromStubs =
  | { type: 'listening'; ports: Record<string, number> }
  | { type: 'tick'; second: number; stubs: StubCounts[] }
  | { type: 'totals'; stubs: StubCounts[] };
