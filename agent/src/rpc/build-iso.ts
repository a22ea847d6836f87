import { rm, stat } from 'node:fs/promises';
import { StorageError, asStorageError } from '../../../common/src/errors.js';
import type { BuildIsoRequest, BuildIsoResponse } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { writeAtomically } from '../../../common/src/files/atomic-file.js';
import { tempNameBeside } from '../../../common/src/files/temp-name.js';
import { type IsoEntry, buildIso } from '../images/build-iso.js';
import { type AgentContext, type CallContext, where } from './context.js';
import { requireField, requirePath } from './validate.js';

/** ISO 9660 volume identifiers hold at most 32 characters. */
const MAX_LABEL_LENGTH = 32;
const SAFE_LABEL = /^[A-Za-z0-9_.-]+$/;
/** A plain file name: the roots' safe characters, no "/". */
const SAFE_NAME = /^[A-Za-z0-9._@+=,:~-]+$/;
const MAX_NAME_LENGTH = 255;

/**
 * tm context: the context ISO, from files on this host and inline bytes, staged beside `path`,
 * written under a temporary name and renamed into place. A repeat builds the same ISO again.
 */
export async function buildIsoImage(
  agent: AgentContext,
  req: BuildIsoRequest,
  call: CallContext,
): Promise<BuildIsoResponse> {
  const action = 'build iso';
  const invalid = (why: string): never => {
    throw new StorageError('INVALID_ARGUMENT', `${action} on ${agent.name}: ${why}`);
  };
  const path = requirePath(agent, action, 'path', req.path);
  const label = requireField(agent, action, 'label', req.label);
  if (label.length > MAX_LABEL_LENGTH || !SAFE_LABEL.test(label)) {
    invalid(
      `label must be 1-${MAX_LABEL_LENGTH} characters of letters, digits and _ . - (got ${JSON.stringify(label)})`,
    );
  }
  const names = new Set<string>();
  const entries: IsoEntry[] = [];
  for (const [i, file] of req.files.entries()) {
    const field = `files[${i}]`;
    const name = file.name;
    if (name === '.' || name === '..' || name.length > MAX_NAME_LENGTH || !SAFE_NAME.test(name)) {
      invalid(
        `${field}.name must be a plain file name of letters, digits and . _ @ + = , : ~ - (got ${JSON.stringify(name)})`,
      );
    }
    if (names.has(name)) invalid(`${field}.name ${JSON.stringify(name)} appears twice`);
    names.add(name);
    if (file.content !== undefined) {
      entries.push({ name, content: file.content });
    } else if (file.source !== undefined && file.source !== '') {
      const local = await agent.roots.resolveTarget(file.source, `${field}.source`);
      const st = await stat(local).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT')
          throw new StorageError('NOT_FOUND', `${action} ${where(agent, file.source ?? '')}: no such file`);
        throw asStorageError(err, action, where(agent, file.source ?? ''));
      });
      if (!st.isFile()) invalid(`${field}.source ${where(agent, file.source)} is not a regular file`);
      entries.push({ name, file: local });
    } else {
      invalid(`${field} needs a source or a content`);
    }
  }
  const local = await agent.roots.resolve(path, 'path');
  const here = where(agent, path);
  const what = `${action} ${here}`;
  return agent.locks.withLock(
    [local],
    what,
    async () => {
      const staging = `${tempNameBeside(local)}.d`;
      try {
        await writeAtomically(local, (temp) =>
          buildIso(temp, staging, { label, entries, copy: agent.copyLocal, signal: call.signal, what }),
        );
      } catch (err) {
        throw asStorageError(err, action, here);
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
      const { size } = await stat(local);
      call.log.info({ path, label, files: entries.length, bytes: size }, 'iso built');
      return { bytes: size };
    },
    call.signal,
  );
}
