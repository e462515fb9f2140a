import type { BankTopology } from './bank-topology';

/**
 * With several coordinator instances, what a load balancer with health
 * checks does for the ledger services: each service's calls to "the
 * coordinator" go through its outbound chaos proxy to one instance (its home,
 * ledger i → instance i mod n); when the runner takes that instance down
 * (kill, pause, crash point) the proxy is moved to a live one, and moved back
 * home once the instance is ready again. The services are given this one URL
 * only: they never choose an instance themselves.
 */
export class InstanceRouter {
  private readonly down = new Set<number>();
  private turn = 0;

  constructor(private readonly t: BankTopology) {}

  /** Instances the runner has not taken down. */
  get up(): number[] {
    return this.t.coordinators.map((c) => c.index).filter((i) => !this.down.has(i));
  }

  /** Instance `i` goes down: every link pointed at it moves to a live instance (in turn). */
  markDown(i: number): void {
    this.down.add(i);
    const up = this.up;
    if (up.length === 0) return;
    const port = this.t.coordinators[i].port;
    for (const ledger of this.t.ledgers) {
      if (ledger.outbound.targetPort !== port) continue;
      const to = this.t.coordinators[up[this.turn++ % up.length]];
      ledger.outbound.retarget({ host: '127.0.0.1', port: to.port });
    }
  }

  /** Instance `i` is ready again: the links whose home it is go back to it. */
  markUp(i: number): void {
    this.down.delete(i);
    const n = this.t.coordinators.length;
    const port = this.t.coordinators[i].port;
    for (const ledger of this.t.ledgers) {
      if (ledger.index % n === i && ledger.outbound.targetPort !== port) ledger.outbound.retarget({ host: '127.0.0.1', port });
    }
  }
}
