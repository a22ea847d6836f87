import { redactUrlSecrets } from '../../../common/src/shown-url.js';
import { REDACT_PATHS } from '../../../common/src/log.js';

/** Shown instead of any secret in stored text. */
export const REDACTED = '[redacted]';

/**
 * Field names whose values are secrets wherever they appear (a data-path ticket in Receive's request,
 * a session, a key, stdin): the same list the logs redact (common/src/log.ts).
 */
const SECRET_FIELDS: ReadonlySet<string> = new Set(REDACT_PATHS.map((p) => p.replace(/^\*\./, '')));

/**
 * JSON text of `value` with every secret field's value replaced, then every configured secret string
 * (the oned session, its password), every URL's user and password and every export URL's token
 * replaced wherever they still occur.
 */
export function redactedJson(value: unknown, secrets: readonly string[]): string {
  const json = JSON.stringify(value ?? null, (key, v: unknown) =>
    SECRET_FIELDS.has(key) && v !== undefined && v !== null && v !== '' ? REDACTED : v,
  );
  return redactStrings(json, secrets);
}

/**
 * `text` with every occurrence of each secret replaced, the user and password of every URL, and
 * the token of every export URL (an ExportImage answer, a market driver's IMPORT_SOURCE:
 * common/src/shown-url.ts).
 */
export function redactStrings(text: string, secrets: readonly string[]): string {
  return redactUrlSecrets(secrets.reduce((out, secret) => out.split(secret).join(REDACTED), text));
}
