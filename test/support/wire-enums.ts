import { ImageFormat } from '../../proto/gen/onestorage/agent/v1/agent.js';

/** A test's format name ('raw', 'qcow2': what qemu-img and the layouts use) as the agent's contract spells it. */
export function wireFormat(name: 'raw' | 'qcow2'): ImageFormat {
  return name === 'qcow2' ? ImageFormat.IMAGE_FORMAT_QCOW2 : ImageFormat.IMAGE_FORMAT_RAW;
}
