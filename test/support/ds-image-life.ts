/**
 * What the image-life tests read back from the image datastore actions, the way oned and the
 * market driver read it: `<SOURCE> <format>` from cp and clone, IMPORT_INFO from export; and where
 * a persistent image's current state lives once a VM left it (docs/image-datastore.md#layouts).
 */
import { lstatSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { expect } from 'vitest';
import type { Stack } from '../../cli/src/demo/stack.js';
import { pkiFiles } from '../../common/src/pki/pki.js';

/** An image as oned stores it after cp or clone: the SOURCE and FORMAT the action printed. */
export interface Printed {
  source: string;
  format: 'raw' | 'qcow2';
}

/** cp's and clone's stdout, `<SOURCE> <format>\n`, as oned splits it. */
export function printedImage(stdout: string): Printed {
  const m = /^(\/\S+) (raw|qcow2)\n$/.exec(stdout);
  expect(m, stdout).not.toBeNull();
  return { source: m?.[1] as string, format: m?.[2] as Printed['format'] };
}

export interface ImportInfo {
  IMPORT_SOURCE: string;
  MD5: string;
  SIZE: string;
  FORMAT: string;
}

/** export's one line of IMPORT_INFO, parsed as one_market.rb parses it. */
export function importInfo(stdout: string): ImportInfo {
  const doc = new XMLParser({ parseTagValue: false }).parse(stdout) as { IMPORT_INFO: ImportInfo };
  return doc.IMPORT_INFO;
}

/**
 * The local file holding a persistent image's current state: the highest-numbered file of its snap
 * dir when `.snap/0` links to SOURCE (the image used in place), else what SOURCE resolves to.
 */
export function currentStateFile(local: string): string {
  const snap = `${local}.snap`;
  if (!lstatSync(join(snap, '0'), { throwIfNoEntry: false })?.isSymbolicLink()) return realpathSync(local);
  const ids = readdirSync(snap)
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
  return join(snap, String(Math.max(...ids)));
}

/** GETs an export URL as a marketplace host would, trusting the cloud's CA; the body, or the status. */
export function downloadExport(stack: Stack, url: string): Promise<Buffer> {
  const ca = readFileSync(pkiFiles(stack.pkiDir, stack.frontend).ca);
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${res.statusCode}`)),
      );
    }).on('error', reject);
  });
}
