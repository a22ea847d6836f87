import type { Clock } from './clock.js';
import { shownUrl } from '../../../common/src/shown-url.js';
import { httpSource, MAX_RETRIES } from './http-source.js';
import type { ImportSource } from './import-pipeline.js';

/** An http(s) URL as an import source: every attempt of the import shares one retry budget. */
export function urlSource(
  url: URL,
  o: { ca: ReadonlyArray<string | Buffer>; what: string; clock?: Clock },
): ImportSource {
  const budget = { retries: MAX_RETRIES };
  return {
    name: shownUrl(url),
    budget,
    open: (signal, events) =>
      httpSource(url, {
        ca: o.ca,
        signal,
        what: o.what,
        budget,
        ...(o.clock ? { clock: o.clock } : {}),
        onTotal: (total) => events.expect(total),
        onRetry: (why, offset) => events.retrying(why, offset),
      }),
  };
}
