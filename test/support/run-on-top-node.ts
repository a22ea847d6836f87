/** qemu-io's answer when the node it was given left the graph (a block job ended meanwhile). */
export const NODE_GONE = /Cannot find device=.* nor node-name=/;
/** Each retry follows a change of the block graph; a test's domain sees only a few such changes. */
export const NODE_LOOKUPS = 5;

/**
 * Runs a monitor command on a disk's top node: `lookup` reads the node just before each try and
 * `command` sends the command for it. An answer saying the node is gone means the block graph
 * changed between the two (test/support/libvirt.ts says when); a lookup that failed wrote nothing,
 * so the node is read again and the command repeated, at most `tries` times. When every try found
 * the node gone this throws, naming `label` and the last answer: the command never ran.
 */
export async function runOnTopNode(
  lookup: () => Promise<string>,
  command: (node: string) => Promise<string>,
  label: string,
  tries = NODE_LOOKUPS,
): Promise<string> {
  let out = '';
  for (let attempt = 1; attempt <= tries; attempt++) {
    out = await command(await lookup());
    if (!NODE_GONE.test(out)) return out;
  }
  throw new Error(`${label}: the disk's top node was gone at each of ${tries} tries: ${out.trim()}`);
}
