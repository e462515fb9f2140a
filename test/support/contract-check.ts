import { OpenApiContract, type Exchange } from './openapi-contract';

/**
 * "The API keeps its own contract": collects every answer a suite receives
 * from the coordinator, checks each against the document the coordinator
 * serves at /openapi.json (OpenApiContract: Ajv over the document), and
 * fails the suite on any violation. Fed directly (`record`) by a suite that
 * holds the answers itself, or by a ContractProxy in front of the coordinator
 * for clients in other processes (the CLI, participant services).
 *
 * @example
 * const contract = await ContractCheck.of(base);
 * afterEach(() => contract.assertHeld());
 * afterAll(() => contract.assertHeld({ minChecked: 10 }));
 */
export class ContractCheck {
  /** Distinct violations (array indices folded: `body/transactions/*`), with how often and one answer that showed it. */
  private violations = new Map<string, { count: number; example: string }>();
  private readonly seen = new Map<string, number>();
  private unmatched = 0;

  constructor(readonly contract: OpenApiContract) {}

  /** The contract of the coordinator at `base`: the document it serves. */
  static async of(base: string): Promise<ContractCheck> {
    const res = await fetch(`${base}/openapi.json`);
    if (res.status !== 200) throw new Error(`GET ${base}/openapi.json answered ${res.status}`);
    return new ContractCheck(new OpenApiContract((await res.json()) as ConstructorParameters<typeof OpenApiContract>[0]));
  }

  record(exchange: Exchange): void {
    const violations = this.contract.check(exchange);
    if (violations === undefined) {
      // No operation describes it (a path or method the API does not have): nothing to hold it to.
      this.unmatched += 1;
      return;
    }
    const key = `${this.contract.operationOf(exchange.method, exchange.target)} ${exchange.status}`;
    this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
    for (const violation of violations) {
      const key = violation.replace(/\/\d+(?=[/ ])/g, '/*');
      const seen = this.violations.get(key);
      if (seen) seen.count += 1;
      else this.violations.set(key, { count: 1, example: `${exchange.method} ${exchange.target} → ${exchange.status} ${exchange.body.slice(0, 400)}` });
    }
  }

  /** How many answers were checked against an operation of the document. */
  get checked(): number {
    return [...this.seen.values()].reduce((a, b) => a + b, 0);
  }

  /** Each (operation, status) checked, with how often: what the suite held to the contract. */
  get coverage(): Record<string, number> {
    return Object.fromEntries([...this.seen].sort(([a], [b]) => a.localeCompare(b)));
  }

  /**
   * Throws, listing them, if any answer since the last call broke the
   * contract (then forgets them, so the next test starts clean); with
   * `minChecked`, also if fewer answers were checked in all: a suite that
   * checked nothing proves nothing.
   */
  assertHeld(options: { minChecked?: number } = {}): void {
    const violations = [...this.violations];
    this.violations = new Map();
    if (violations.length > 0) {
      const lines = violations.map(([message, { count, example }]) => `- ${message} (${count}×)\n    e.g. ${example}`);
      throw new Error(`answers broke the coordinator's own OpenAPI document (/openapi.json):\n${lines.join('\n')}`);
    }
    if (options.minChecked !== undefined && this.checked < options.minChecked) {
      throw new Error(`only ${this.checked} answer(s) were checked against the OpenAPI document (${this.unmatched} had no operation); expected at least ${options.minChecked}`);
    }
  }
}
