/** A column of a text table: its heading and how to get a row's cell. */
export interface Column<T> {
  heading: string;
  cell(row: T): string;
}

/**
 * A plain text table for people: headings, then one line per row, columns
 * padded to their widest cell and separated by two spaces. The last column is
 * not padded (no trailing blanks).
 *
 * @example
 * renderTable([{ heading: 'ID', cell: (t) => t.id }, { heading: 'STATE', cell: (t) => t.state }], transactions)
 */
export function renderTable<T>(columns: ReadonlyArray<Column<T>>, rows: readonly T[]): string {
  const cells = [columns.map((c) => c.heading), ...rows.map((row) => columns.map((c) => oneLine(c.cell(row))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
  return cells.map((line) => line.map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

/** `label: value` lines with the labels aligned. */
export function renderFields(fields: ReadonlyArray<[string, string]>): string {
  const width = Math.max(...fields.map(([label]) => label.length)) + 1;
  return fields.map(([label, value]) => `${`${label}:`.padEnd(width)} ${oneLine(value)}`).join('\n') + '\n';
}

// A cell is one line: a newline in a participant's message must not break the table.
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
