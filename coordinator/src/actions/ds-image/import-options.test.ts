import { describe, expect, it } from 'vitest';
import { ImageFormat } from '../../../../proto/gen/onestorage/agent/v1/agent.js';
import { actionData, type ActionDataOptions } from '../../../../test/support/ds-action-data.js';
import { parseImageActionData } from './image-action-data.js';
import { classifyImportPath } from './import-path.js';
import { importOptions } from './import-options.js';

const options = (o: ActionDataOptions) =>
  importOptions(parseImageActionData(Buffer.from(actionData(o)), 'image 7'));
const { IMAGE_FORMAT_QCOW2: QCOW2, IMAGE_FORMAT_RAW: RAW, IMAGE_FORMAT_UNSPECIFIED: KEEP } = ImageFormat;

describe("cp's preparation (fs rules)", () => {
  it.each<[string, ActionDataOptions, Partial<ReturnType<typeof importOptions>>]>([
    [
      'defaults',
      {},
      { noDecompress: false, convertTo: KEEP, sparse: true, plainFile: false, md5: '', sha1: '' },
    ],
    ['DRIVER qcow2 converts', { datastore: { template: { DRIVER: 'qcow2' } } }, { convertTo: QCOW2 }],
    ['DRIVER RAW converts', { datastore: { template: { DRIVER: 'RAW' } } }, { convertTo: RAW }],
    ['DRIVER vmdk does not', { datastore: { template: { DRIVER: 'vmdk' } } }, { convertTo: KEEP }],
    ['CONVERT=no', { datastore: { template: { DRIVER: 'qcow2', CONVERT: 'no' } } }, { convertTo: KEEP }],
    [
      'CONVERT=true is not yes',
      { datastore: { template: { DRIVER: 'qcow2', CONVERT: 'true' } } },
      { convertTo: KEEP },
    ],
    ['a CD-ROM', { image: { type: 1 }, datastore: { template: { DRIVER: 'qcow2' } } }, { convertTo: KEEP }],
    [
      'a file datastore',
      { datastore: { type: 2, template: { DRIVER: 'qcow2' } } },
      { convertTo: KEEP, noDecompress: true, plainFile: true },
    ],
    [
      'a file datastore with NO_DECOMPRESS=no',
      { datastore: { type: 2, template: { NO_DECOMPRESS: 'no' } } },
      { noDecompress: false, plainFile: true },
    ],
    ['NO_DECOMPRESS=Yes', { datastore: { template: { NO_DECOMPRESS: 'Yes' } } }, { noDecompress: true }],
    ['SPARSE=No', { datastore: { template: { SPARSE: 'No' } } }, { sparse: false }],
    [
      'LIMIT_TRANSFER_BW=1k',
      { datastore: { template: { LIMIT_TRANSFER_BW: '1k' } } },
      { limitBytesPerSecond: 1024 },
    ],
    [
      'MD5 and SHA1, lower-cased',
      { image: { template: { MD5: 'ABCDEF0123456789ABCDEF0123456789', SHA1: 'A'.repeat(40) } } },
      { md5: 'abcdef0123456789abcdef0123456789', sha1: 'a'.repeat(40) },
    ],
    [
      'FROM_APP_MD5 alone is checked',
      { image: { template: { FROM_APP_MD5: 'f'.repeat(32) } } },
      { md5: 'f'.repeat(32) },
    ],
    [
      'MD5 equal to FROM_APP_MD5 in another case',
      { image: { template: { MD5: 'F'.repeat(32), FROM_APP_MD5: 'f'.repeat(32) } } },
      { md5: 'f'.repeat(32) },
    ],
  ])('%s', (_what, o, expected) => {
    expect(options(o)).toMatchObject(expected);
  });

  it.each<[string, ActionDataOptions, RegExp]>([
    [
      'MD5 and FROM_APP_MD5 that disagree',
      { image: { template: { MD5: 'a'.repeat(32), FROM_APP_MD5: 'b'.repeat(32) } } },
      /^image 7: IMAGE\/TEMPLATE\/MD5 a{32} and FROM_APP_MD5 b{32} \(the marketplace app's\) disagree$/,
    ],
    [
      'an MD5 that is not hex',
      { image: { template: { MD5: "x';rm -rf /" } } },
      /IMAGE\/TEMPLATE\/MD5 .* is not a hex MD5 digest$/,
    ],
    [
      'a short SHA1',
      { image: { template: { SHA1: 'abc' } } },
      /IMAGE\/TEMPLATE\/SHA1 "abc" is not a hex SHA-1 digest$/,
    ],
  ])('refuses %s', (_what, o, message) => {
    expect(() => options(o)).toThrow(message);
  });
});

describe('IMAGE/PATH', () => {
  it.each([
    ['/var/tmp/a.qcow2', 'local', '/var/tmp/a.qcow2'],
    ['http://127.0.0.1:8080/a.img', 'url', 'http://127.0.0.1:8080/a.img'],
    ['HTTPS://user:secret@example.test/a.img?x=1', 'url', 'https://example.test/a.img?x=1'],
    [
      `https://10.0.0.2:8443/export/${'T'.repeat(43)}/image-3.qcow2`,
      'url',
      'https://10.0.0.2:8443/export/[redacted]/image-3.qcow2',
    ],
  ])('%s is %s (shown as %s)', (path, kind, shown) => {
    expect(classifyImportPath(path, 'image 7')).toMatchObject({ kind, shown });
  });

  it.each([
    ['relative/a.img', /PATH "relative\/a.img" is neither an absolute path nor an http\(s\) URL$/],
    [
      'ssh://host:/a.img',
      /PATH scheme ssh:\/\/ is not supported by the grpc image datastore: register from http:\/\/, https:\/\/ or a file on the front-end$/,
    ],
    ['s3://bucket/a.img', /PATH scheme s3:\/\/ is not supported/],
    ['lxd://https://images/x?size=1', /PATH scheme lxd:\/\/ is not supported/],
    ['rbd://host/pool/img', /PATH scheme rbd:\/\/ is not supported/],
    [
      'restic+rbd://1/2',
      /PATH scheme restic\+rbd:\/\/ \(OpenNebula's restic backup datastore\) is not supported/,
    ],
    [
      'rsync://100/0:abc/var/lib/one/datastores/100/1/abc/disk.0.0',
      /PATH scheme rsync:\/\/ \(OpenNebula's rsync backup datastore\)/,
    ],
    [
      'grpc_backup://100/7/0',
      /PATH grpc_backup:\/\/ \(an image from a grpc_backup datastore\) is not supported yet/,
    ],
    ['http://', /PATH is not a valid http:\/\/ URL$/],
  ])('refuses %s', (path, message) => {
    expect(() => classifyImportPath(path, 'image 7')).toThrow(message);
  });
});
