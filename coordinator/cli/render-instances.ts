import type { InstanceRow, InstancesReport } from '../cluster/instances-report';
import { renderTable } from './table';

/** `twopc instances` for people. */
export function renderInstances(report: InstancesReport): string {
  if (report.instances.length === 0) return `decision log: ${report.store}; no leases (one coordinator instance)\n`;
  const live = report.instances.filter((i) => i.state === 'live' || i.state === 'self').length;
  return (
    `decision log: ${report.store}; ${live} instance(s) holding a lease; answering: token ${report.self ?? 'none'}\n` +
    renderTable(
      [
        { heading: 'TOKEN', cell: (i: InstanceRow) => String(i.token) },
        { heading: 'NAME', cell: (i) => i.name },
        { heading: 'URL', cell: (i) => i.url },
        { heading: 'STATE', cell: (i) => (i.state === 'taken-over' ? `taken over by ${i.takenOverBy}` : i.state) },
        { heading: 'LEASE UNTIL', cell: (i) => i.expiresAt },
      ],
      report.instances,
    )
  );
}
