/**
 * The agents' export URLs (docs/image-datastore.md#export-for-marketplaces):
 * `<base>/export/<token>[/<name>]`, where the token, 32 random bytes in base64url, is the only
 * credential. The shape is written here once: the agent builds and parses URLs with it, and the
 * logs and the coordinator's journal use it to keep tokens out of what they write.
 */

/** The path under which the export listener serves. */
export const EXPORT_PATH_PREFIX = '/export/';
/** Random bytes in a token: as hard to guess as a data-path ticket. */
export const EXPORT_TOKEN_BYTES = 32;
/** A token's characters and length: unpadded base64url of EXPORT_TOKEN_BYTES bytes. */
const TOKEN = `[A-Za-z0-9_-]{${Math.ceil((EXPORT_TOKEN_BYTES * 4) / 3)}}`;
/** A token as it appears in a URL. */
export const EXPORT_TOKEN_PATTERN = new RegExp(`^${TOKEN}$`);
/** Shown instead of a token. */
const REDACTED_TOKEN = '[redacted]';
/** A token inside any text: after `/export/`, not followed by another token character. */
const TOKEN_IN_TEXT = new RegExp(`${EXPORT_PATH_PREFIX}${TOKEN}(?![A-Za-z0-9_-])`, 'g');

/**
 * `text` with the token of every export URL in it replaced (`.../export/[redacted]/image.qcow2`):
 * what a log line or a journal entry may keep of an ExportImage answer or a market driver's
 * IMPORT_SOURCE.
 */
export function redactExportTokens(text: string): string {
  if (!text.includes(EXPORT_PATH_PREFIX)) return text;
  return text.replace(TOKEN_IN_TEXT, `${EXPORT_PATH_PREFIX}${REDACTED_TOKEN}`);
}
