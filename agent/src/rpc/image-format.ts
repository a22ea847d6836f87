import { ImageFormat } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import type { ImageFormat as QemuFormat } from '../qemu/qemu-img.js';
import type { AgentContext } from './context.js';
import { enumName } from './validate.js';

/** The contract's image formats and the names qemu-img knows them by (-f, -F). */
const NAMES: ReadonlyMap<ImageFormat, QemuFormat> = new Map([
  [ImageFormat.IMAGE_FORMAT_RAW, 'raw'],
  [ImageFormat.IMAGE_FORMAT_QCOW2, 'qcow2'],
]);

/**
 * A request's required ImageFormat field as qemu-img names it: IMAGE_FORMAT_UNSPECIFIED and unknown
 * numbers are INVALID_ARGUMENT naming the field and the allowed values ("format must be one of
 * raw, qcow2").
 */
export function formatName(
  agent: AgentContext,
  method: string,
  field: string,
  value: ImageFormat,
): QemuFormat {
  return enumName(agent, method, field, value, NAMES);
}

/** The contract's ImageFormat for a format the agent read or wrote (responses). */
export function imageFormat(name: QemuFormat): ImageFormat {
  return name === 'qcow2' ? ImageFormat.IMAGE_FORMAT_QCOW2 : ImageFormat.IMAGE_FORMAT_RAW;
}
