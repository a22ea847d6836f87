// What fuzzing the data path found (data-path-frames.fuzz.test.ts), replayed through the same bench:
// a real agent's Receive from a sender that sends exactly what the fuzzer's counterexample sent.
// Each ended the Receive as INTERNAL (the agent's "unforeseen") before its fix.
import { describe, expect, it } from 'vitest';
import { MODES, receiveChecked, useDataPathRig } from './data-path-rig.js';
import type { SenderCase } from './data-path-sender-streams.js';
import type { Tree } from './data-path-trees.js';

const rig = useDataPathRig();

const MTIME = 1_700_000_000_000;
const fileTree: Tree = {
  entries: [
    {
      path: '',
      kind: 'file',
      mode: 0o644,
      size: 553,
      mtimeMs: MTIME,
      extents: [
        [43, 59],
        [425, 35],
      ],
    },
  ],
  files: [
    {
      path: '',
      size: 553,
      extents: [
        [43, 59],
        [425, 35],
      ],
      seed: 513_830_611,
    },
  ],
};
const dirTree: Tree = {
  entries: [
    { path: '', kind: 'dir', mode: 0o755, size: 0, mtimeMs: MTIME },
    { path: 'a', kind: 'file', mode: 0o600, size: 0, mtimeMs: MTIME, extents: [] },
  ],
  files: [{ path: 'a', size: 0, extents: [], seed: 10 }],
};
const honest: SenderCase = {
  tree: fileTree,
  manifest: { k: 'none' },
  challenge: 'valid',
  stream: { k: 'none' },
  cut: 1,
  reset: false,
};

const found: Array<[string, SenderCase, boolean, string, RegExp]> = [
  [
    "a sender's ERROR frame with reason INTERNAL (the sender's own unforeseen, logged there)",
    { ...honest, stream: { k: 'senderError', at: 1, reason: 'INTERNAL', message: 'disk on fire' } },
    true,
    'TRANSFER_FAILED',
    /sender: disk on fire/,
  ],
  [
    'a CHALLENGE that is not JSON',
    { ...honest, challenge: 'notJson' },
    true,
    'TRANSFER_FAILED',
    /protocol error: malformed CHALLENGE/,
  ],
  [
    'a manifest whose directory entry carries extents that are not a list',
    { ...honest, tree: dirTree, manifest: { k: 'field', at: 0, field: 'extents', value: {} } },
    true,
    'UNSAFE_PATH',
    /entry 0: extents on a dir/,
  ],
  [
    "a manifest declaring a file larger than the filesystem allows (1 PiB, past ext4's 16 TiB)",
    { ...honest, manifest: { k: 'field', at: 0, field: 'size', value: 2 ** 50 } },
    false,
    'NO_SPACE',
    /file too large for the destination filesystem/,
  ],
];

describe('data-path fuzz findings, replayed', () => {
  let n = 0;
  for (const mode of MODES) {
    it.each(found)(
      `${mode}: %s ends the Receive in one line with a known reason`,
      async (_name, c, sparse, reason, message) => {
        const got = await receiveChecked(rig, { mode, c, sparse, dest: 'in' }, `found${n++}`);
        expect(got.outcome).toBe('refused');
        expect(got.reason).toBe(reason);
        expect(got.message).toMatch(message);
      },
    );
  }

  it('an honest stream still lands, and the agents logged no unexpected error', async () => {
    for (const mode of MODES) {
      expect(
        (await receiveChecked(rig, { mode, c: honest, sparse: true, dest: 'in' }, `honest-${mode}`)).outcome,
      ).toBe('sound');
      expect(rig.agents[mode].unexpected).toEqual([]);
    }
    expect(rig.unhandled).toEqual([]);
  });
});
