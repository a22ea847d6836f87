import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeImage, MIB, writePattern } from '../../../cli/src/demo/demo-images.js';
import {
  dsDriverActionData,
  dsStatActionData,
  writeDatastoreXml,
  writeImageXml,
  writeVmXml,
  type DatastoreFixture,
} from '../../../cli/src/demo/fake-oned/fixtures.js';
import { run } from './command.js';
import type { Fleet } from './fleet.js';
import { FAKE_ONED_FIXTURES, IMAGES_DIR, IMAGES_PORT } from './frontend-services.js';

const REMOTES = '/var/lib/one/remotes';
const DATASTORES = '/var/lib/one/datastores';
const TM = 'grpc';
const SYSTEM_DS = 0;
const IMAGE_DS: DatastoreFixture = { id: 1, name: 'default', type: 0, tmMad: TM, dsMad: 'grpc' };
const IMAGE_SIZE_MB = 64;
/** disk.0 is grown at deployment, as the guide's VM asks (SIZE > ORIGINAL_SIZE). */
const DISK0_SIZE_MB = 128;
const PATTERN = { image0: 0x11, image1: 0x22, vmWrite: 0x5a } as const;
const SHIM_TIMEOUT_MS = 120_000;

export interface LifecycleReport {
  /** Every shim call, in order, with its exit code and duration. */
  calls: string[];
  /** sha256 of the persistent disk after the VM's write, as found on each node it was moved to. */
  persistentDiskSums: Record<string, string>;
}

/**
 * The guide's example VM through the shims installed on the front-end, run as oneadmin as oned runs
 * them, against the fleet's agents: its two images registered (datastore stat + cp from a URL
 * served on the front-end), then CREATE on host01 (clone + ln), the VM's write into its persistent
 * disk, STOP (mv to the front-end), RESUME (back to host01), MIGRATE to host02 and SHUTDOWN (delete,
 * mvds). After every step the data is checked where it must be, on that node's own filesystem
 * (read through its root directory on this machine), and found absent from the others. Throws at the
 * first call or check that fails, naming it.
 */
export async function runFleetLifecycle(
  fleet: Fleet,
  vmId: number,
  log: (line: string) => void,
): Promise<LifecycleReport> {
  const fe = fleet.node('frontend');
  const report: LifecycleReport = { calls: [], persistentDiskSums: {} };
  const shim = async (kind: 'tm' | 'datastore', action: string, args: string[], stdin?: string) => {
    const started = Date.now();
    const r = await fe.exec(['runuser', '-u', 'oneadmin', '--', join(REMOTES, kind, TM, action), ...args], {
      what: `${kind}/${TM}/${action} on the front-end`,
      input: stdin ?? '',
      timeoutMs: SHIM_TIMEOUT_MS,
    });
    const line = `${kind}/${action} ${args.join(' ')} → exit 0 (${Date.now() - started} ms)`;
    report.calls.push(line);
    log(line);
    return r.stdout.trim();
  };

  // Images, made on this machine straight into the front-end's served directory.
  const imageIds = { alpine: vmId * 10, data: vmId * 10 + 1 };
  const served = {
    alpine: join(IMAGES_DIR, `vm${vmId}-alpine.qcow2`),
    data: join(IMAGES_DIR, `vm${vmId}-data.raw`),
  };
  await makeImage(fe.path(served.alpine), 'qcow2', IMAGE_SIZE_MB, PATTERN.image0);
  await makeImage(fe.path(served.data), 'raw', IMAGE_SIZE_MB, PATTERN.image1);
  await writeDatastoreXml(fe.path(FAKE_ONED_FIXTURES), IMAGE_DS);
  await writeDatastoreXml(fe.path(FAKE_ONED_FIXTURES), {
    id: SYSTEM_DS,
    name: 'system',
    type: 1,
    tmMad: TM,
    dsMad: '-',
  });
  const register = async (name: keyof typeof served, persistent: boolean) => {
    const url = `http://127.0.0.1:${IMAGES_PORT}/${served[name].split('/').pop()}`;
    const size = Number(
      await shim('datastore', 'stat', [String(imageIds[name])], dsStatActionData(url, IMAGE_DS)),
    );
    check(
      Number.isInteger(size) && size > 0,
      `datastore stat of ${url} answered a size in MiB (got ${size})`,
    );
    const image = {
      id: imageIds[name],
      name: `vm${vmId}-${name}`,
      source: '',
      path: url,
      format: '',
      size,
      datastoreId: IMAGE_DS.id,
      ...(persistent ? { persistent: true } : {}),
    };
    const answer = await shim('datastore', 'cp', [String(image.id)], dsDriverActionData(image, IMAGE_DS));
    const [source, format] = answer.split(/\s+/);
    check(
      source !== undefined && format !== undefined,
      `datastore cp printed "SOURCE FORMAT" (got "${answer}")`,
    );
    await writeImageXml(fe.path(FAKE_ONED_FIXTURES), { ...image, source, format });
    return { id: image.id, source, format, size };
  };
  const image0 = await register('alpine', false);
  const image1 = await register('data', true);
  check(
    image0.format === 'qcow2' && image1.format === 'raw',
    `formats qcow2 and raw (got ${image0.format}, ${image1.format})`,
  );
  for (const image of [image0, image1]) await onlyOn(fleet, image.source, 'frontend');
  await sameGuestData(fe.path(served.alpine), fe.path(image0.source), 'the registered qcow2 image');
  const dataSum = await sha256(fe.path(image1.source));
  check(dataSum === (await sha256(fe.path(served.data))), 'the registered raw image has the served bytes');

  const vmDir = `${DATASTORES}/${SYSTEM_DS}/${vmId}`;
  const sys = (host: string): string => `${host}:${vmDir}`;
  const placements: string[] = [];
  const place = async (host: string): Promise<void> => {
    placements.push(host);
    await writeVmXml(fe.path(FAKE_ONED_FIXTURES), {
      id: vmId,
      name: `vm${vmId}`,
      deployId: `one-${vmId}`,
      disks: [
        {
          diskId: 0,
          imageId: image0.id,
          source: image0.source,
          format: image0.format,
          tmMad: TM,
          size: DISK0_SIZE_MB,
          originalSize: image0.size,
        },
        {
          diskId: 1,
          imageId: image1.id,
          source: image1.source,
          format: image1.format,
          tmMad: TM,
          persistent: true,
          size: image1.size,
          originalSize: image1.size,
        },
      ],
      history: placements.map((hostname) => ({ hostname, dsId: SYSTEM_DS, tmMad: TM })),
    });
  };
  const args = (ds: number): string[] => [String(vmId), String(ds)];
  const moveAll = async (from: string, to: string): Promise<void> => {
    await shim('tm', 'mv', [`${sys(from)}/disk.0`, `${sys(to)}/disk.0`, ...args(IMAGE_DS.id)]);
    await shim('tm', 'mv', [`${sys(from)}/disk.1`, `${sys(to)}/disk.1`, ...args(IMAGE_DS.id)]);
    await shim('tm', 'mv', [sys(from), sys(to), ...args(SYSTEM_DS)]);
  };
  let vmDiskSum = '';
  const checkVmOn = async (host: string, step: string): Promise<void> => {
    await onlyOn(fleet, vmDir, host);
    const node = fleet.node(host);
    await sameGuestData(fe.path(image0.source), node.path(`${vmDir}/disk.0`), `${step}: disk.0 on ${host}`);
    const sum = await sha256(node.path(`${vmDir}/disk.1`));
    check(sum === vmDiskSum, `${step}: disk.1 on ${host} has sha256 ${sum}, expected ${vmDiskSum}`);
    report.persistentDiskSums[`${step} ${host}`] = sum;
  };

  await place('host01');
  await shim('tm', 'clone', [`frontend:${image0.source}`, `${sys('host01')}/disk.0`, ...args(IMAGE_DS.id)]);
  await shim('tm', 'ln', [`frontend:${image1.source}`, `${sys('host01')}/disk.1`, ...args(IMAGE_DS.id)]);
  vmDiskSum = dataSum;
  await checkVmOn('host01', 'CREATE');
  // The "VM" on host01 writes into its persistent disk, in host01's own filesystem.
  await writePattern(fleet.node('host01').path(`${vmDir}/disk.1`), 'raw', PATTERN.vmWrite, 4 * MIB, MIB);
  vmDiskSum = await sha256(fleet.node('host01').path(`${vmDir}/disk.1`));
  check(vmDiskSum !== dataSum, 'the VM write changed disk.1 on host01');

  await moveAll('host01', 'frontend');
  await checkVmOn('frontend', 'STOP');
  await moveAll('frontend', 'host01');
  await place('host01');
  await checkVmOn('host01', 'RESUME');
  await moveAll('host01', 'host02');
  await place('host02');
  await checkVmOn('host02', 'MIGRATE');

  await shim('tm', 'delete', [`${sys('host02')}/disk.0`, ...args(IMAGE_DS.id)]);
  await shim('tm', 'mvds', [`${sys('host02')}/disk.1`, image1.source, ...args(IMAGE_DS.id)]);
  await shim('tm', 'delete', [sys('host02'), ...args(SYSTEM_DS)]);
  await onlyOn(fleet, vmDir, undefined);
  const saved = await sha256(fe.path(image1.source));
  check(
    saved === vmDiskSum,
    `SHUTDOWN: the persistent image on the front-end holds the VM's disk (sha256 ${saved})`,
  );
  await sameGuestData(fe.path(served.alpine), fe.path(image0.source), 'SHUTDOWN: the non-persistent image');
  return report;
}

/** `path` exists on `host` only (or on no node at all when host is undefined). */
async function onlyOn(fleet: Fleet, path: string, host: string | undefined): Promise<void> {
  for (const name of ['frontend', 'host01', 'host02']) {
    const there = existsSync(fleet.node(name).path(path));
    check(there === (name === host), `${path} ${there ? 'exists' : 'is missing'} on ${name}`);
  }
}

/** Both images show the guest the same data (a grown image's extra part reads as zeroes). */
async function sameGuestData(a: string, b: string, what: string): Promise<void> {
  const r = await run('qemu-img', ['compare', a, b], { what: `compare ${a} with ${b}`, allowFailure: true });
  check(r.code === 0, `${what}: qemu-img compare ${a} ${b} says: ${r.stdout.trim()} ${r.stderr.trim()}`);
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function check(holds: boolean, what: string): asserts holds {
  if (!holds) throw new Error(`fleet lifecycle: ${what}`);
}
