import { defineAction } from '../define-action.js';
import { imageFormat } from '../disk-facts.js';
import { cleanPath } from '../host-path.js';
import { DS_EXPORT_ARGS } from '../oned-signatures.js';
import { datastoreHost } from './datastore-host.js';
import { need, parseImageActionData } from './image-action-data.js';
import { aboutImage, formatAt, formatText } from './image-call.js';

/**
 * Image datastore `export` (docs/image-datastore.md#export), run by the marketplace driver when an
 * image becomes an app: the agent holding the image makes it available at a short-lived https URL
 * and reports its MD5 and format; printed as the IMPORT_INFO document the marketplace driver parses,
 * on one line. A failure is an error line on stderr and exit 1 (fs prints it on stdout).
 */
export const exportImage = defineAction(
  {
    signature: DS_EXPORT_ARGS,
    does: 'makes the image available to a marketplace at a short-lived https URL on the agent holding it; prints IMPORT_INFO',
  },
  async (ctx, args) => {
    const appId = args.app_id;
    const probe = parseImageActionData(ctx.stdin, `app ${appId}`);
    const owner = probe.image.id === undefined ? probe.owner : `image ${probe.image.id} (app ${appId})`;
    const data = { ...probe, owner };
    const source = cleanPath(need(data, 'IMAGE/SOURCE', data.image.source));
    const format = formatAt(data, 'IMAGE/FORMAT', data.image.format);
    const size = need(data, 'IMAGE/SIZE', data.image.sizeMb);
    // fs picks the bridge by the app id (docs/image-datastore.md#where-an-image-lives).
    const host = await datastoreHost(ctx, {
      bridgeList: data.datastore.bridgeList,
      id: appId,
      owner,
      list: `BRIDGE_LIST of datastore ${data.datastore.id}`,
    });
    const r = await aboutImage(owner, () =>
      ctx.ops.call(host, 'exportImage', {
        source,
        format: imageFormat(format),
        ttlSeconds: 0,
        // The download name at the end of the URL.
        label: `${probe.image.id === undefined ? `app-${appId}` : `image-${probe.image.id}`}.${format}`,
      }),
    );
    const served = formatText(r.format, owner, host);
    ctx.info(`export: ${owner}: ${host}:${source} served as ${served}, ${r.sizeBytes} bytes`);
    const info =
      `<IMPORT_INFO><IMPORT_SOURCE>${cdata(r.url)}</IMPORT_SOURCE><MD5>${cdata(r.md5)}</MD5>` +
      `<SIZE>${cdata(String(size))}</SIZE><FORMAT>${cdata(served)}</FORMAT><DISPOSE>NO</DISPOSE></IMPORT_INFO>`;
    return { stdout: `${info}\n` };
  },
);

/** A CDATA section holding any text (a `]]>` inside is split across two sections). */
function cdata(text: string): string {
  return `<![CDATA[${text.replaceAll(']]>', ']]]]><![CDATA[>')}]]>`;
}
