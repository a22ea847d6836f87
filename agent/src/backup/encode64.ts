/** Ruby's Base64.encode64 wraps its output every 60 characters (and ends with a newline). */
const LINE_LENGTH = 60;

/**
 * Base64 as Ruby's `Base64.encode64` writes it: what OpenNebula's prebackup puts in
 * `backup/vm.xml`, and what its backup datastores and restore read back (docs/opennebula/backups.md#flow).
 */
export function encode64(data: string | Buffer): string {
  const b64 = Buffer.from(data).toString('base64');
  let out = '';
  for (let i = 0; i < b64.length; i += LINE_LENGTH) out += `${b64.slice(i, i + LINE_LENGTH)}\n`;
  return out;
}
