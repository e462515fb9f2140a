/**
 * A lease's URL tells what kind of process holds it, and so who can finish
 * its transactions when it dies (no lease-store schema for it):
 *
 * - `http(s)://…`: a `twopc serve` instance (or an operator's CLI run).
 *   Other instances relay requests for its transactions to that URL.
 * - `in-process://<group>`: an application running the in-process
 *   coordinator. It serves no requests, and only processes with its
 *   databases can finish its transactions: those of its group.
 */
export function servesRequests(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/** The lease URL of an in-process coordinator of `group`. */
export function inProcessLeaseUrl(group: string): string {
  return `in-process://${encodeURIComponent(group)}`;
}
