// Plain terminal tables for edge-fleet's read commands (--json prints the rows instead).
export function table(rows: Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(none)\n';
  const cols = columns ?? Object.keys(rows[0]);
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return '-';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  };
  const cells = rows.map((r) => cols.map((c) => cell(r[c]).replace(/\s+/g, ' ')));
  // The last column (a reason, a message) is never cut: nothing follows it to keep aligned.
  const widths = cols.map((c, i) => Math.min(i === cols.length - 1 ? Infinity : 60, Math.max(c.length, ...cells.map((r) => r[i].length))));
  const fmt = (vals: string[]): string => vals.map((v, i) => (v.length > widths[i] ? v.slice(0, widths[i] - 1) + '…' : v.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(cols.map((c) => c.toUpperCase())), ...cells.map(fmt)].join('\n') + '\n';
}
