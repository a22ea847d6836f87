import { describe, expect, it } from 'vitest';
import { SECTION_BEGIN, editOnedConf, ourDriverNames, setList } from './edit-oned-conf.js';

const STOCK = `# TM_MAD = [ EXECUTABLE = "commented out" ]
TM_MAD = [
    EXECUTABLE = "one_tm",
    ARGUMENTS = "-t 15 -d dummy,ssh,qcow2"
]

DATASTORE_MAD = [
    EXECUTABLE = "one_datastore",
    ARGUMENTS  = "-t 15 -d dummy,fs,rsync -s shared,ssh,qcow2"
]

TM_MAD_CONF = [
    NAME = "ssh", LN_TARGET = "SYSTEM", CLONE_TARGET = "SYSTEM", SHARED = "NO"
]
`;

describe('ourDriverNames (derived from the printed snippet)', () => {
  it('lists the TM, datastore and shared system datastore names', () => {
    expect(ourDriverNames()).toEqual({
      tm: ['grpc', 'grpc_qcow2'],
      datastore: ['grpc', 'grpc_backup'],
      systemDs: ['grpc_qcow2'],
    });
  });
});

describe('setList', () => {
  it.each([
    ['-t 15 -d a,b', '-d', ['c'], true, '-t 15 -d a,b,c'],
    ['-t 15 -d a,b,c', '-d', ['c'], true, '-t 15 -d a,b,c'],
    ['-t 15 -d a,c,b', '-d', ['c'], false, '-t 15 -d a,b'],
    ['-t 15 -d a -s x', '-s', ['y'], true, '-t 15 -d a -s x,y'],
    ['-t 15 -d a', '-s', ['y'], true, '-t 15 -d a -s y'],
    ['-t 15 -d a -s y', '-s', ['y'], false, '-t 15 -d a'],
    ['-t 15 -d a', '-s', ['y'], false, '-t 15 -d a'],
  ])('%s %s %j add=%s -> %s', (args, flag, names, add, expected) => {
    expect(setList(args, flag, names, add)).toBe(expected);
  });
});

describe('editOnedConf', () => {
  it('apply adds our names and one section; a second apply changes nothing', () => {
    const once = editOnedConf(STOCK, 'apply', 'oned.conf');
    expect(once).toContain('ARGUMENTS = "-t 15 -d dummy,ssh,qcow2,grpc,grpc_qcow2"');
    expect(once).toContain('"-t 15 -d dummy,fs,rsync,grpc,grpc_backup -s shared,ssh,qcow2,grpc_qcow2"');
    expect(once).toContain('# TM_MAD = [ EXECUTABLE = "commented out" ]');
    expect(once.split(SECTION_BEGIN)).toHaveLength(2);
    expect(once.match(/NAME = "grpc"/g)).toHaveLength(2);
    expect(editOnedConf(once, 'apply', 'oned.conf')).toBe(once);
  });

  it('remove gives back the original text; a second remove changes nothing', () => {
    const removed = editOnedConf(editOnedConf(STOCK, 'apply', 'f'), 'remove', 'f');
    expect(removed).toBe(STOCK);
    expect(editOnedConf(removed, 'remove', 'f')).toBe(STOCK);
  });

  it('refuses a file without TM_MAD, naming the file and the block', () => {
    expect(() => editOnedConf('PORT = 2633\n', 'apply', '/etc/one/oned.conf')).toThrow(
      /\/etc\/one\/oned.conf: no TM_MAD = \[/,
    );
  });

  it('refuses a hand-written block of ours outside the section, naming its line', () => {
    const text = `${STOCK}\nDS_MAD_CONF = [\n    NAME = "grpc", REQUIRED_ATTRS = ""\n]\n`;
    expect(() => editOnedConf(text, 'apply', 'oned.conf')).toThrow(
      /line 16 already declares DS_MAD_CONF "grpc"/,
    );
  });
});
