import { md5File } from './demo-images.js';
import {
  dsDriverActionData,
  dsStatActionData,
  type DatastoreFixture,
  type ImageFixture,
} from './fake-oned/fixtures.js';
import { runAction } from './run-action.js';

/** What oned stores after a successful cp: the SOURCE and FORMAT the driver printed, and STAT's size. */
export interface RegisteredImage {
  source: string;
  format: string;
  sizeMb: number;
}

export interface ImageToRegister {
  id: number;
  name: string;
  /** IMAGE/PATH: where the datastore driver fetches the image from. */
  url: string;
  /** The file behind `url`, whose MD5 goes into IMAGE/TEMPLATE/MD5 as a user would give it. */
  file: string;
  persistent?: boolean;
}

/**
 * Registers an image as oned does for `oneimage create --path URL`: the datastore `stat` action
 * measures PATH, then `cp` (both through the installed shims, with DS_DRIVER_ACTION_DATA in base64
 * on stdin as one_datastore.rb sends it) fetches it into the datastore and prints `<SOURCE>
 * <FORMAT>`, which oned stores (docs/opennebula/image-datastore.md#cp-answer-and-oned). Throws with
 * the driver's message when either action fails.
 */
export async function registerImage(
  remotesDir: string,
  dsMad: string,
  datastore: DatastoreFixture,
  image: ImageToRegister,
  print: (line: string) => void,
): Promise<RegisteredImage> {
  const stat = await runAction(
    remotesDir,
    'datastore',
    dsMad,
    'stat',
    [String(image.id)],
    dsStatActionData(image.url, datastore),
  );
  print(`[REGISTER] stat ${image.url} → exit ${stat.code} (${stat.ms.toFixed(0)} ms): ${stat.stdout.trim()}`);
  printStderr(stat.stderr, print);
  const sizeMb = Number(stat.stdout.trim());
  if (stat.code !== 0 || !Number.isInteger(sizeMb) || sizeMb <= 0)
    throw new Error(`stat of ${image.url} failed: ${stat.stderr.trim() || stat.stdout.trim()}`);

  const fixture: ImageFixture = {
    id: image.id,
    name: image.name,
    source: '',
    path: image.url,
    format: '',
    size: sizeMb,
    datastoreId: datastore.id,
    template: { MD5: await md5File(image.file) },
    ...(image.persistent ? { persistent: true } : {}),
  };
  const cp = await runAction(
    remotesDir,
    'datastore',
    dsMad,
    'cp',
    [String(image.id)],
    dsDriverActionData(fixture, datastore),
  );
  print(
    `[REGISTER] cp ${image.id} (PATH=${image.url}) → exit ${cp.code} (${cp.ms.toFixed(0)} ms): ${cp.stdout.trim()}`,
  );
  printStderr(cp.stderr, print);
  // oned splits the answer on whitespace: SOURCE, then FORMAT (ImageManager::_cp).
  const [source, format] = cp.stdout.trim().split(/\s+/);
  if (cp.code !== 0 || !source || !format)
    throw new Error(`cp of image ${image.id} failed: ${cp.stderr.trim() || cp.stdout.trim()}`);
  print(`registered image ${image.id} (${image.name}): SOURCE=${source} FORMAT=${format} SIZE=${sizeMb}`);
  return { source, format, sizeMb };
}

/** The driver's log lines (INFO:, ERROR:), indented as the demo shows the TM actions'. */
function printStderr(stderr: string, print: (line: string) => void): void {
  for (const line of stderr.trim().split('\n').filter(Boolean)) print(`    ${line}`);
}
