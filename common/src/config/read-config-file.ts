import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { StorageError, oneLine } from '../errors.js';

/** Reads a YAML or JSON config file (JSON is valid YAML, but .json files get JSON's error messages). */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new StorageError(
      'CONFIG_INVALID',
      `config ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new StorageError('CONFIG_INVALID', `config ${file}: not valid YAML/JSON: ${oneLine(String(err))}`);
  }
}
