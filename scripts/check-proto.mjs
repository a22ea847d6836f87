#!/usr/bin/env node
// Regenerates the ts-proto output into a scratch directory with the checked-in buf.gen.yaml and fails
// when it differs from the committed proto/gen/ (someone edited a .proto without regenerating, or
// edited generated code by hand).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const scratch = mkdtempSync(join(tmpdir(), 'check-proto-'));
try {
  const template = readFileSync('buf.gen.yaml', 'utf8').replace(/out: proto\/gen/, `out: ${scratch}`);
  const templatePath = join(scratch, 'buf.gen.yaml');
  writeFileSync(templatePath, template);
  execFileSync('node_modules/.bin/buf', ['generate', '--template', templatePath], { stdio: 'inherit' });
  rmSync(templatePath);
  try {
    execFileSync('diff', ['-r', '-u', 'proto/gen', scratch], { stdio: 'inherit' });
  } catch {
    console.error('check:proto: proto/gen is out of date; run `npm run gen:proto` and commit the result');
    process.exit(1);
  }
  console.log('check:proto: proto/gen matches the .proto files');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
