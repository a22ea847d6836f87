import { describe, expect, it } from 'vitest';
import { runTool } from '../../../common/src/tools/run-tool.js';
import { QEMU_IMG_FEATURES, missingFeatures } from './qemu-img-checks.js';
import { atLeast, versionIn } from './tool-version.js';

describe('missingFeatures', () => {
  it("finds every subcommand and option the actions use in this machine's qemu-img --help", async () => {
    const { stdout } = await runTool('qemu-img', ['--help']);
    expect(missingFeatures(stdout)).toEqual([]);
  });

  it('names a missing option and a missing subcommand', () => {
    const help = QEMU_IMG_FEATURES.filter((f) => f.command !== 'bitmap')
      .map(
        (f) =>
          `  ${f.command} ${f.options
            .filter((o) => o !== '-U')
            .map((o) => `[${o} x]`)
            .join(' ')} filename`,
      )
      .join('\n');
    expect(missingFeatures(help)).toEqual(['convert -U', 'info -U', 'map -U', 'qemu-img bitmap']);
  });
});

describe('versionIn and atLeast', () => {
  it.each([
    ['qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022', '7.2.22'],
    ['qemu-nbd 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)', '7.2.22'],
    ['QEMU emulator version 6.0.0', '6.0.0'],
    ['no digits here', undefined],
  ])('%j → %s', (text, version) => {
    expect(versionIn(text)).toBe(version);
  });

  it.each([
    ['9.0.0', '7.2', true],
    ['7.2.0', '7.2', true],
    ['7.1.9', '7.2', false],
    ['6.0', '6.0', true],
    ['5.2.0', '6.0', false],
  ])('%s at least %s: %s', (version, min, expected) => {
    expect(atLeast(version, min)).toBe(expected);
  });
});
