import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../../common/src/errors.js';
import {
  actionData,
  actionDataXml,
  datastoreXml,
  imageXml,
  statImage,
} from '../../../../test/support/ds-action-data.js';
import { MAX_PATH_CHARS, need, parseImageActionData, type ImageActionData } from './image-action-data.js';

const b64 = (text: string): Buffer => Buffer.from(Buffer.from(text).toString('base64'));
const parse = (stdin: string | Buffer, imageId?: number): ImageActionData =>
  parseImageActionData(
    typeof stdin === 'string' ? Buffer.from(stdin) : stdin,
    'image 7',
    imageId === undefined ? {} : { imageId },
  );

function refusal(fn: () => unknown): StorageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  }
  throw new Error('expected a refusal');
}

describe('DS_DRIVER_ACTION_DATA of the image datastore actions', () => {
  it('reads every field an action uses, CDATA and all', () => {
    const d = parse(
      actionData({
        image: {
          source: '/var/lib/one//datastores/1/abc',
          path: 'https://example.test/a.qcow2',
          format: 'qcow2',
          fs: 'ext4',
          size: 2048,
          type: 2,
          persistent: 1,
          targetSnapshot: 3,
          template: { MD5: 'A'.repeat(32), SHA1: 'b'.repeat(40), FROM_APP_MD5: 'c'.repeat(32) },
        },
        datastore: {
          id: 100,
          type: 2,
          tmMad: 'grpc_qcow2',
          template: {
            BRIDGE_LIST: ' host01  host02\n',
            SAFE_DIRS: '/var/tmp /srv/images',
            RESTRICTED_DIRS: '/',
            NO_DECOMPRESS: 'YES',
            LIMIT_TRANSFER_BW: '2M',
            CONVERT: 'No',
            DRIVER: 'qcow2',
            SPARSE: 'NO',
          },
        },
        sourceBridgeList: 'host03',
      }),
      7,
    );
    expect(d.image).toEqual({
      id: 7,
      source: '/var/lib/one//datastores/1/abc',
      path: 'https://example.test/a.qcow2',
      format: 'qcow2',
      fs: 'ext4',
      sizeMb: 2048,
      type: 2,
      persistent: true,
      targetSnapshot: 3,
      md5: 'A'.repeat(32),
      sha1: 'b'.repeat(40),
      fromAppMd5: 'c'.repeat(32),
    });
    expect(d.datastore).toEqual({
      id: 100,
      type: 2,
      tmMad: 'grpc_qcow2',
      basePath: '/var/lib/one//datastores/100',
      bridgeList: ['host01', 'host02'],
      safeDirs: ['/var/tmp', '/srv/images'],
      restrictedDirs: ['/'],
      noDecompress: true,
      limitBytesPerSecond: 2 * 1024 * 1024,
      convert: false,
      driver: 'qcow2',
      sparse: false,
    });
    expect(d.sourceBridgeList).toEqual(['host03']);
  });

  it('leaves empty and absent elements undefined, as xpath.rb has them', () => {
    const d = parse(actionData({ image: { source: '', fs: '', targetSnapshot: null, size: null } }));
    expect(d.image.source).toBeUndefined();
    expect(d.image.fs).toBeUndefined();
    expect(d.image.targetSnapshot).toBeUndefined();
    expect(d.image.sizeMb).toBeUndefined();
    expect(d.image.md5).toBeUndefined();
    expect(d.datastore).toMatchObject({
      bridgeList: [],
      noDecompress: undefined,
      convert: undefined,
      limitBytesPerSecond: 0,
      sparse: true,
    });
    expect(d.sourceBridgeList).toEqual([]);
  });

  it("reads STAT's synthetic IMAGE (PATH and SIZE only)", () => {
    const d = parse(actionData({ image: statImage('/var/tmp/a.raw', 5) }));
    expect(d.image).toMatchObject({ id: undefined, path: '/var/tmp/a.raw', sizeMb: 5, source: undefined });
  });

  it('accepts base64 split over lines, as some encoders write it', () => {
    const wrapped = actionData().replace(/(.{60})/g, '$1\n');
    expect(parse(wrapped).image.id).toBe(7);
  });

  it.each([
    ['empty stdin', '', /^stdin: expected DS_DRIVER_ACTION_DATA in base64, got nothing$/],
    [
      'not base64',
      'not base64 at all!',
      /^stdin: expected DS_DRIVER_ACTION_DATA in base64, got something else$/,
    ],
    ['raw XML', actionDataXml(), /^stdin: expected DS_DRIVER_ACTION_DATA in base64/],
    ['base64 of garbage', b64('<DS_DRIVER_ACTION_DATA><IMAGE>'), /^stdin: image 7 XML is malformed: /],
    ['another root', b64('<VM><ID>1</ID></VM>'), /^stdin: image 7 XML has no \/DS_DRIVER_ACTION_DATA root/],
    [
      'no IMAGE',
      b64(`<DS_DRIVER_ACTION_DATA>${datastoreXml()}</DS_DRIVER_ACTION_DATA>`),
      /^image 7: \/DS_DRIVER_ACTION_DATA\/IMAGE is missing$/,
    ],
    [
      'no DATASTORE',
      b64(`<DS_DRIVER_ACTION_DATA>${imageXml()}</DS_DRIVER_ACTION_DATA>`),
      /^image 7: \/DS_DRIVER_ACTION_DATA\/DATASTORE is missing$/,
    ],
    [
      'no DATASTORE/ID',
      actionData({ datastore: { id: null, basePath: '/x' } }),
      /^image 7: \/DS_DRIVER_ACTION_DATA\/DATASTORE\/ID is missing$/,
    ],
    [
      'IMAGE/SIZE not a number',
      actionData({ image: { size: '10M' } }),
      /^image 7: \/DS_DRIVER_ACTION_DATA\/IMAGE\/SIZE is not an integer: "10M"$/,
    ],
    [
      'IMAGE/ID of another image',
      actionData({ image: { id: 8 } }),
      /^image 7: \/DS_DRIVER_ACTION_DATA\/IMAGE\/ID is 8, not the image 7 of the call$/,
    ],
    [
      'TARGET_SNAPSHOT not a number',
      actionData({ image: { targetSnapshot: 'last' } }),
      /IMAGE\/TARGET_SNAPSHOT is not an integer: "last"$/,
    ],
    [
      'a LIMIT_TRANSFER_BW curl refuses',
      actionData({ datastore: { template: { LIMIT_TRANSFER_BW: '10 MB/s' } } }),
      /^image 7: \/DS_DRIVER_ACTION_DATA\/DATASTORE\/TEMPLATE\/LIMIT_TRANSFER_BW "10 MB\/s" is not a rate as curl's --limit-rate takes it/,
    ],
  ])('%s: one INVALID_ARGUMENT line', (_what, stdin, message) => {
    const e = refusal(() => parse(stdin, 7));
    expect(e.reason).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(message);
    expect(e.message).not.toContain('\n');
  });

  it('need names the XPath of a missing field', () => {
    const d = parse(actionData({ image: { source: '' } }));
    expect(need(d, 'IMAGE/PATH', 'x')).toBe('x');
    const e = refusal(() => need(d, 'IMAGE/SOURCE', d.image.source));
    expect(e.message).toBe('image 7: /DS_DRIVER_ACTION_DATA/IMAGE/SOURCE is missing or empty');
  });

  it('takes a huge document (a 3 MiB template) and refuses a huge PATH in a short line', () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    const d = parse(actionData({ image: { template: { DESCRIPTION: big } } }));
    expect(d.image.id).toBe(7);
    const e = refusal(() => parse(actionData({ image: { path: `/var/tmp/${'a'.repeat(MAX_PATH_CHARS)}` } })));
    expect(e.message).toMatch(/IMAGE\/PATH is 4105 characters long, more than 4096/);
    expect(e.message.length).toBeLessThan(300);
    const garbage = refusal(() => parse(`${'A'.repeat(2 * 1024 * 1024)}!`));
    expect(garbage.message.length).toBeLessThan(100);
  });
});
