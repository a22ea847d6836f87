// Generators of what a hostile or broken caller puts in a driver call: paths that climb out of the
// roots or through a planted symlink, shell metacharacters, NUL bytes, non-UTF-8, numbers out of
// range, huge values; and stdin that is malformed base64, XML bombs, deep nesting, wrong types.
import fc from 'fast-check';

const LOC = '/var/lib/one/datastores';
const HOSTS = ['frontend', 'host01', 'host02', 'nohost', '', 'host01;id', '../host01', 'host01\u0000'];

const PATHS = (canary: string): string[] => [
  `${LOC}/0/42/disk.0`,
  `${LOC}/0/42`,
  `${LOC}/1/9f3c0c1d2e`,
  `${LOC}/0/42/disk.0.snap/0`,
  `${LOC}/0/../../../../etc/passwd`,
  `${LOC}/0/escape/victim`,
  `${LOC}/0/escape/sub/disk.0`,
  `${LOC}/0/escape`,
  `${LOC}//0///42/./disk.0`,
  `${LOC}/0/42/disk.0;rm -rf /`,
  `${LOC}/0/$(touch /tmp/pwned)`,
  `${LOC}/0/\`id\``,
  `${LOC}/0/42/disk.0\u0000.snap`,
  `${LOC}/0/42/\ud800`,
  '/etc/passwd',
  '/',
  '',
  'relative/path',
  canary,
  `${canary}/victim`,
  `${LOC}/0/${'a'.repeat(300)}`,
];

const NUMBERS = [
  '0',
  '1',
  '-1',
  '42',
  '4294967296',
  '99999999999999999999999',
  'NaN',
  '1e309',
  '0x10',
  ' 7',
  '7 ',
  '+3',
  '3.5',
];

const word = fc.oneof(
  fc.constantFrom('clone', 'ln', 'mv', 'delete', 'cp', 'snap_create', 'monitor', '..', 'clone.ssh', 'x;y'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

function arg(canary: string): fc.Arbitrary<string> {
  const path = fc.constantFrom(...PATHS(canary));
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...HOSTS), path).map(([h, p]) => `${h}:${p}`) },
    { weight: 2, arbitrary: path },
    { weight: 3, arbitrary: fc.constantFrom(...NUMBERS) },
    { weight: 1, arbitrary: fc.constantFrom('raw', 'qcow2', 'vmdk', 'swap', 'ext4', 'SWAP', '') },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 64 }).map((k) => 'A'.repeat(k * 1024)) },
  );
}

const xmlBomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"><!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]><DS_DRIVER_ACTION_DATA><IMAGE><PATH>&lol5;</PATH></IMAGE></DS_DRIVER_ACTION_DATA>`;
const deep = (n: number): string => `${'<A>'.repeat(n)}x${'</A>'.repeat(n)}`;
const actionData = (image: string, ds: string): string =>
  `<DS_DRIVER_ACTION_DATA><IMAGE>${image}</IMAGE><DATASTORE>${ds}</DATASTORE></DS_DRIVER_ACTION_DATA>`;

const xmlDocs = fc.oneof(
  fc.constant(xmlBomb),
  fc.integer({ min: 100, max: 20_000 }).map(deep),
  fc.constant(
    actionData(
      '<ID>abc</ID><SIZE>-5</SIZE><PATH>/etc/passwd</PATH><FORMAT>qcow2</FORMAT>',
      '<ID>1</ID><BASE_PATH>/var/lib/one/datastores/1</BASE_PATH>',
    ),
  ),
  fc.constant(
    actionData(
      '<ID>7</ID><SOURCE>/var/lib/one/datastores/0/escape/victim</SOURCE><SIZE>1</SIZE>',
      '<ID>1</ID><TEMPLATE><BRIDGE_LIST>host01</BRIDGE_LIST></TEMPLATE>',
    ),
  ),
  fc.constant(actionData('<ID>7</ID><ID>8</ID><SOURCE>a</SOURCE><SOURCE>b</SOURCE>', '<ID>1</ID>')),
  fc.constant(
    '<VM><ID>42</ID><TEMPLATE><DISK><DISK_ID>x</DISK_ID><SOURCE>/etc/shadow</SOURCE></DISK></TEMPLATE></VM>',
  ),
  fc.string({ maxLength: 200 }).map((t) => `<DS_DRIVER_ACTION_DATA>${t}</DS_DRIVER_ACTION_DATA>`),
  fc.string({ unit: 'binary', maxLength: 300 }),
);

const stdin: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(new Uint8Array()) },
  {
    weight: 4,
    arbitrary: xmlDocs.map((x) => new Uint8Array(Buffer.from(Buffer.from(x).toString('base64')))),
  },
  { weight: 2, arbitrary: xmlDocs.map((x) => new Uint8Array(Buffer.from(x))) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 4096 }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('!!!not base64!!!', 'QUJD=====', '=', 'A'.repeat(1 << 20))
      .map((t) => new Uint8Array(Buffer.from(t))),
  },
);

export const hostile = { word, arg, stdin };
