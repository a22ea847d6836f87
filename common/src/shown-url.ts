/**
 * URLs as messages and logs may show them (docs/security.md#the-journal-and-the-logs): an image URL
 * may carry a user and password (`https://user:secret@mirror/disk.qcow2`, which OpenNebula's
 * downloader passes to curl as they are), and an agent's export URL carries its token in the path
 * (common/src/export-tokens.ts). Neither may reach oned's error line, a log or the journal.
 */
import { redactExportTokens } from './export-tokens.js';

/**
 * A URL's userinfo inside any text: the scheme, then everything up to the authority's last `@`
 * (WHATWG takes the last one, so `u:p@ss@host` has the userinfo `u:p@ss`). The authority ends at
 * `/`, `?`, `#`, white space, or a quote, bracket or backslash (a URL written in JSON or in a
 * message: none of them stands unescaped in a URL's userinfo).
 */
const USERINFO_IN_TEXT = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#"'`<>\\]*@/g;

/** `url` without user and password, and with an export URL's token replaced. */
export function shownUrl(url: URL): string {
  if (url.username === '' && url.password === '') return redactExportTokens(url.href);
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return redactExportTokens(copy.href);
}

/**
 * `text` with the user and password of every URL in it removed and every export URL's token
 * replaced: for text that may hold a URL that does not parse, and for whole log lines and journal
 * entries (whatever string a URL ended up in).
 */
export function redactUrlSecrets(text: string): string {
  const bare = text.includes('@') ? text.replace(USERINFO_IN_TEXT, '$1') : text;
  return redactExportTokens(bare);
}
