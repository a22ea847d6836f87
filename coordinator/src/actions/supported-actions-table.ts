import { shimEntries } from '../../../common/src/drivers/driver-actions.js';
import { STDIN_TEXT } from './action-args.js';
import { driverEntry, type DriverEntry } from './dispatch.js';
import { usageLine } from './parse-action-args.js';

const KIND_LABEL = { tm: 'TM', datastore: 'DS' } as const;

interface Row {
  entry: DriverEntry;
  actions: string[];
  /** `kind driver` → the plain name is served (''), and the mixed-mode suffixes served. */
  where: Map<string, Set<string>>;
}

/**
 * The README's "What is supported" table, made from the declarations: one row per action (actions
 * with the same handler on the same drivers share a row) with its drivers, its arguments as oned
 * sends them and what it does. A test keeps the README equal to it.
 */
export function supportedActionsTable(): string {
  const byAction = new Map<string, Row>();
  const ids = new Map<DriverEntry, number>();
  /** Rows follow the order of the installed names: every row of one action together. */
  const order = new Map<string, number>();
  for (const { kind, driver, action } of shimEntries()) {
    const entry = driverEntry(kind, driver, action);
    if (!entry) throw new Error(`${kind}/${driver}/${action} is installed but has no dispatch entry`);
    if (!ids.has(entry)) ids.set(entry, ids.size);
    const dot = action.indexOf('.');
    const base = dot < 0 ? action : action.slice(0, dot);
    if (!order.has(base)) order.set(base, order.size);
    const key = `${ids.get(entry)}/${base}`;
    const row = byAction.get(key) ?? { entry, actions: [base], where: new Map<string, Set<string>>() };
    byAction.set(key, row);
    const place = `${KIND_LABEL[kind]} \`${driver}\``;
    const served = row.where.get(place) ?? new Set<string>();
    row.where.set(place, served.add(dot < 0 ? '' : action.slice(dot)));
  }
  // Actions with the same handler on the same drivers (the backup hooks' spellings) share a row.
  const rows = new Map<string, Row>();
  for (const row of byAction.values()) {
    const key = `${ids.get(row.entry)}/${whereText(row)}`;
    const same = rows.get(key);
    if (same) same.actions.push(...row.actions);
    else rows.set(key, row);
  }
  const lines = ['| action | drivers | arguments | what it does |', '|---|---|---|---|'];
  const sorted = [...rows.values()].sort(
    (a, b) => (order.get(a.actions[0] ?? '') ?? 0) - (order.get(b.actions[0] ?? '') ?? 0),
  );
  for (const row of sorted) {
    const actions = row.actions.map((a) => `\`${a}\``).join(', ');
    lines.push(`| ${actions} | ${whereText(row)} | ${argumentsText(row.entry)} | ${doesText(row.entry)} |`);
  }
  return lines.join('\n');
}

function whereText(row: Row): string {
  return [...row.where]
    .map(([place, served]) => {
      const suffixes = [...served].filter((s) => s !== '').map((s) => `\`${s}\``);
      if (suffixes.length === 0) return place;
      return served.has('') ? `${place} (and ${suffixes.join(', ')})` : `${place} as ${suffixes.join(', ')}`;
    })
    .join('; ');
}

function argumentsText(entry: DriverEntry): string {
  if (typeof entry !== 'function') return '—';
  const stdin = entry.signature.stdin === undefined ? '' : `; stdin: ${STDIN_TEXT[entry.signature.stdin]}`;
  return `\`${usageLine(entry.signature).replaceAll('|', '\\|')}\`${stdin}`;
}

function doesText(entry: DriverEntry): string {
  return typeof entry === 'function' ? entry.does : entry.notImplemented;
}
