import type { CoordinatorAnswer, UnfinishedTx } from './coordinator-view';
import type { Observation } from './fault-injector';
import type { TxRecord } from './history';
import type { LedgerSnapshot, PreparedLeft } from './ledger-state';

/** Every kind of violation the checker reports. */
export const VIOLATION_KINDS = [
  'money-not-conserved', // the sum of all balances changed
  'ledger-inconsistent', // a ledger's balances do not match the transfers it holds
  'partial-commit', // a transaction visible in some of its ledgers only, or with some of its legs only
  'lost-commit', // acknowledged committed (200/202), not (fully) visible
  'visible-abort', // the client knows it did not commit (409, or it never sent commit), yet it is visible
  'vote-no-committed', // a transaction with a branch that had to vote no is visible
  'unknown-transaction-visible', // rows of a transaction id no client used
  'marker-mismatch', // a committed branch without its marker row, or a marker without the branch's rows
  'coordinator-disagrees', // the coordinator's decision contradicts what the databases hold
  'coordinator-unfinished', // the coordinator still lists a transaction after quiescence (in doubt, hazard)
  'prepared-left', // a prepared transaction of ours is left in a database
  'not-quiescent', // recovery and sweeps did not finish within the bound
  'log-damaged', // the decision log would not open (or does not verify after a clean stop)
  'accepted-on-failed-log', // the coordinator took new work after its log failed
  'store-unfinished', // a shared log still holds transactions not completed after quiescence
  'lease-not-taken-over', // a shared log: the lease of a dead coordinator process was never taken over
] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

export interface Violation {
  kind: ViolationKind;
  /** The transaction it is about, if one. */
  txId?: string;
  detail: string;
}

/** Everything the checker looks at, gathered after quiescence. */
export interface CheckInput {
  history: readonly TxRecord[];
  /** Indexed by ledger number. */
  ledgers: readonly LedgerSnapshot[];
  initialBalance: number;
  prepared: readonly PreparedLeft[];
  /** The coordinator's answer per transaction id. */
  coordinator: ReadonlyMap<string, CoordinatorAnswer>;
  /** What the coordinator still listed at the end (undefined: it could not be asked). */
  unfinished: readonly UnfinishedTx[] | undefined;
  quiescent: boolean;
  /** `log verify` of the coordinator's data directory after its last, clean stop. */
  logVerify: { ok: boolean; problems: string[] };
  /** What the fault injector saw during the run. */
  observations: readonly Observation[];
  /** A shared log: transactions the store holds not completed after quiescence (undefined: it could not be read). */
  storeUnfinished?: readonly string[] | undefined;
  /** A shared log: leases of dead processes nobody took over (undefined: they could not be read). */
  leaseProblems?: readonly string[] | undefined;
  /** Set with a shared log: the two fields above are to be checked. */
  sharedLog?: boolean;
}

/** Tallies over the history, for the summary. */
export interface CheckStats {
  checked: number;
  /** Transactions visible in every ledger they touch. */
  visible: number;
  invisible: number;
  /** Transactions the coordinator had forgotten or never logged (404): checked against the databases only. */
  unknownToCoordinator: number;
  total: number;
  expectedTotal: number;
}

const legKey = (l: { leg: number; account: number; delta: number }) => `${l.leg}:${l.account}:${l.delta}`;

/**
 * SPEC §9's invariants, checked after quiescence and recovery: money is
 * conserved across every ledger; every transaction applied in all its
 * ledgers or none (by its `transfers` rows, cross-checked with the
 * `twopc_marker` rows of its branches); every commit acknowledged to a
 * client visible; nothing the client knows did not commit visible; the
 * coordinator's decisions agree with the databases; nothing left prepared
 * or unfinished; the decision log clean.
 *
 * @example
 * const { violations } = checkConsistency(input);
 * if (violations.length > 0) process.exitCode = 1;
 */
export function checkConsistency(input: CheckInput): { violations: Violation[]; stats: CheckStats } {
  const violations: Violation[] = [];
  const add = (kind: ViolationKind, detail: string, txId?: string) => violations.push({ kind, detail, ...(txId ? { txId } : {}) });
  const { ledgers } = input;

  const total = ledgers.reduce((sum, l) => sum + l.balanceTotal, 0);
  const expectedTotal = ledgers.reduce((sum, l) => sum + l.accounts * input.initialBalance, 0);
  if (total !== expectedTotal) add('money-not-conserved', `the ledgers hold ${total} in all, not ${expectedTotal} (${total - expectedTotal > 0 ? '+' : ''}${total - expectedTotal})`);
  for (const l of ledgers) {
    let deltas = 0;
    for (const legs of l.transfers.values()) for (const leg of legs) deltas += leg.delta;
    const moved = l.balanceTotal - l.accounts * input.initialBalance;
    if (moved !== deltas) add('ledger-inconsistent', `${l.name}: balances moved by ${moved} but its transfers add up to ${deltas}`);
  }

  const stats: CheckStats = { checked: 0, visible: 0, invisible: 0, unknownToCoordinator: 0, total, expectedTotal };
  const known = new Set<string>();
  for (const rec of input.history) {
    known.add(rec.id);
    stats.checked += 1;
    const where = ledgers.filter((l) => l.transfers.has(rec.id));
    const expected = new Set(rec.ledgers);
    for (const l of where) {
      const want = rec.legs.filter((leg) => leg.ledger === l.index).map(legKey).sort().join(',');
      const got = l.transfers.get(rec.id)!.map(legKey).sort().join(',');
      if (want !== got) add('partial-commit', `${l.name} holds legs [${got}] of it, the client sent [${want}]`, rec.id);
    }
    const complete = where.length === expected.size && where.every((l) => expected.has(l.index));
    const visible = where.length > 0;
    if (visible && !complete) {
      add('partial-commit', `applied in ${names(where)} but not in ${names(ledgers.filter((l) => expected.has(l.index) && !l.transfers.has(rec.id)))}`, rec.id);
    }
    if (visible) stats.visible += 1;
    else stats.invisible += 1;
    if (rec.outcome === 'ok' && !complete) add('lost-commit', `commit acknowledged (${rec.why}) but ${visible ? 'only partly' : 'not'} visible`, rec.id);
    if (rec.outcome === 'failed' && visible) add('visible-abort', `the client knows it did not commit (${rec.why}) but it is visible in ${names(where)}`, rec.id);
    if (rec.kind === 'vote-no' && visible) add('vote-no-committed', `its branch on ledger_${rec.sabotaged} had to vote no, yet it is visible in ${names(where)}`, rec.id);

    for (const l of ledgers.filter((x) => expected.has(x.index))) {
      const hasRows = l.transfers.has(rec.id);
      const hasMarker = l.markers.has(rec.id);
      if (hasRows !== hasMarker) add('marker-mismatch', `${l.name}: ${hasRows ? 'rows without a marker' : `a marker (${l.markers.get(rec.id)!.join(', ')}) without rows`}`, rec.id);
    }

    const answer = input.coordinator.get(rec.id);
    if (answer?.found === true) {
      if (answer.decision === 'commit' && !complete) add('coordinator-disagrees', `the coordinator says ${answer.state}/commit, but it is ${visible ? 'only partly' : 'not'} visible`, rec.id);
      if (answer.decision === 'abort' && visible) add('coordinator-disagrees', `the coordinator says ${answer.state}/abort, but it is visible in ${names(where)}`, rec.id);
    } else if (answer?.found === false) {
      stats.unknownToCoordinator += 1;
    }
  }
  for (const l of ledgers) {
    for (const id of l.transfers.keys()) if (!known.has(id)) add('unknown-transaction-visible', `${l.name} holds transfers of transaction ${id}, which no client used`, id);
  }

  for (const p of input.prepared) add('prepared-left', `cluster ${p.cluster}: ${p.gid}`, txIdOfGid(p.gid));
  if (input.unfinished === undefined) add('coordinator-unfinished', 'the coordinator could not be asked what it still has unfinished');
  for (const u of input.unfinished ?? []) {
    const hazards = u.hazards.map((h) => `${h.gid}: ${h.detail}`).join('; ');
    add('coordinator-unfinished', `still ${u.state}${u.decision ? `/${u.decision}` : ''}${hazards ? `, hazards: ${hazards}` : ''}`, u.id);
  }
  if (!input.quiescent) {
    const hazardous = (input.unfinished ?? []).filter((u) => u.hazards.length > 0).length;
    add('not-quiescent', `after healing every fault, ${input.prepared.length} prepared transaction(s) and ${input.unfinished?.length ?? 'unknown'} unfinished one(s) remained (${hazardous} with a heuristic hazard, which only an operator ends)`);
  }
  if (input.sharedLog) {
    if (input.storeUnfinished === undefined) add('store-unfinished', 'the shared log could not be read after quiescence');
    for (const id of input.storeUnfinished ?? []) add('store-unfinished', 'the shared log still holds it, not completed', id);
    if (input.leaseProblems === undefined) add('lease-not-taken-over', 'the leases in the shared log could not be read after quiescence');
    for (const problem of input.leaseProblems ?? []) add('lease-not-taken-over', problem);
  }
  if (!input.logVerify.ok) add('log-damaged', `log verify after the final clean stop: ${input.logVerify.problems.join('; ')}`);
  for (const o of input.observations) {
    if (o.violation) add(o.kind === 'accepted-on-failed-log' ? 'accepted-on-failed-log' : 'log-damaged', `${new Date(o.at).toISOString()}: ${o.detail}`);
  }
  return { violations, stats };
}

function names(ledgers: readonly LedgerSnapshot[]): string {
  return ledgers.map((l) => l.name).join(', ') || 'none';
}

/** `twopc_<32 hex>_<n>` → the UUID. */
function txIdOfGid(gid: string): string | undefined {
  const m = /_([0-9a-f]{32})_\d+$/.exec(gid);
  if (!m) return undefined;
  const h = m[1];
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
