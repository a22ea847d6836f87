// The retry of test/support/libvirt.ts's qemu-io helper, without libvirt: the lookup and the
// command are stand-ins that answer as the QEMU monitor does when a block job replaced the node.
import { describe, expect, it } from 'vitest';
import { NODE_LOOKUPS, runOnTopNode } from './run-on-top-node.js';

/** What `qemu-io <node> "..."` answers over HMP when <node> left the graph. */
const gone = (node: string): string => `Cannot find device=${node} nor node-name=${node}\r\n`;
const WROTE = 'wrote 512/512 bytes at offset 0\r\n';

/** A graph whose top node changes at every lookup; the first `goneTimes` commands find it gone. */
function changingGraph(goneTimes: number) {
  const lookups: string[] = [];
  const commands: string[] = [];
  return {
    lookups,
    commands,
    lookup: () => {
      lookups.push(`#block${lookups.length}`);
      return Promise.resolve(lookups[lookups.length - 1] ?? '');
    },
    command: (node: string) => {
      commands.push(node);
      return Promise.resolve(commands.length <= goneTimes ? gone(node) : WROTE);
    },
  };
}

describe('runOnTopNode', () => {
  it.each([0, 1, NODE_LOOKUPS - 1])(
    'after %i gone answers, runs the command on the node read just before and returns its answer',
    async (goneTimes) => {
      const g = changingGraph(goneTimes);
      expect(await runOnTopNode(g.lookup, g.command, 'qemu-io write on vm sda')).toBe(WROTE);
      expect(g.commands).toEqual(g.lookups);
      expect(g.commands).toHaveLength(goneTimes + 1);
    },
  );

  it('throws when the node is gone at every try, naming the command and the last answer', async () => {
    const g = changingGraph(Infinity);
    await expect(runOnTopNode(g.lookup, g.command, 'qemu-io write on vm sda')).rejects.toThrow(
      `qemu-io write on vm sda: the disk's top node was gone at each of ${NODE_LOOKUPS} tries: ` +
        gone(`#block${NODE_LOOKUPS - 1}`).trim(),
    );
    expect(g.commands).toHaveLength(NODE_LOOKUPS);
  });

  it('gives up after `tries` when told, and a failing lookup is not retried', async () => {
    const g = changingGraph(Infinity);
    await expect(runOnTopNode(g.lookup, g.command, 'flush', 2)).rejects.toThrow(/gone at each of 2 tries/);
    expect(g.commands).toHaveLength(2);
    let commands = 0;
    const noNode = () => Promise.reject(new Error('no block node for sda (ua-sda) of vm'));
    await expect(runOnTopNode(noNode, () => Promise.resolve(String(++commands)), 'flush')).rejects.toThrow(
      /no block node/,
    );
    expect(commands).toBe(0);
  });
});
