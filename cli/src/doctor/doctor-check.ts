// One line of `one-storage doctor`: `ok|WARN|FAIL  <check>: <what was found>`, and for a check
// that is not ok, `  fix: <what to do>` below it.

export type Level = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: string;
  level: Level;
  detail: string;
  /** What to do; empty for an ok check. */
  fix: string;
}

const WORDS: Readonly<Record<Level, string>> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

export const ok = (name: string, detail: string): DoctorCheck => ({ name, level: 'ok', detail, fix: '' });
export const warn = (name: string, detail: string, fix: string): DoctorCheck => ({
  name,
  level: 'warn',
  detail,
  fix,
});
export const fail = (name: string, detail: string, fix: string): DoctorCheck => ({
  name,
  level: 'fail',
  detail,
  fix,
});

/** The check's lines as the terminal shows them. */
export function checkLines(c: DoctorCheck): string[] {
  const head = `${WORDS[c.level]}  ${c.name}: ${c.detail}`;
  return c.level === 'ok' || c.fix === '' ? [head] : [head, `  fix: ${c.fix}`];
}
