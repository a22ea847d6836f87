import type { FileHandle } from 'node:fs/promises';
import { fileChunks } from './file-chunks.js';
import type { ImportSource } from './import-pipeline.js';

/** An open, verified file as an import source (a local upload, or what a remote agent sent). */
export function fileSource(fh: FileHandle, size: number, name: string): ImportSource {
  return {
    name,
    // A file read again from its start never needs a retry.
    budget: { retries: 0 },
    open: (signal, events) => {
      events.expect(size);
      return fileChunks(fh, signal);
    },
  };
}
