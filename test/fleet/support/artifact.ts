import { join } from 'node:path';
import { run } from './command.js';

export interface Artifact {
  /** The tarball on the controller (its .json manifest beside it). */
  path: string;
  version: string;
  sha256: string;
}

/** Building the artifact (tsc + production node_modules) takes about 15 s here. */
const BUILD_TIMEOUT_MS = 5 * 60_000;

/**
 * Builds the one-storage artifact from `checkout` with the playbook's own builder
 * (packaging/build-artifact.sh), optionally under another version (the rolling upgrade's N+1).
 */
export async function buildArtifact(checkout: string, outDir: string, version?: string): Promise<Artifact> {
  const r = await run(
    'bash',
    [
      join(checkout, 'packaging/build-artifact.sh'),
      '--source',
      checkout,
      '--out',
      outDir,
      ...(version ? ['--version', version] : []),
    ],
    {
      what: `build the one-storage artifact${version ? ` ${version}` : ''} from ${checkout}`,
      timeoutMs: BUILD_TIMEOUT_MS,
      env: process.env,
    },
  );
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const built = JSON.parse(last) as { artifact: string; version: string; sha256: string };
  return { path: built.artifact, version: built.version, sha256: built.sha256 };
}
