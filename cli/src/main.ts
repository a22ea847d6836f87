#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { runDemo } from './demo/run-demo.js';
import { DEFAULT_JOURNAL, showJournal } from './journal/show-journal.js';
import { ONED_CONF_SNIPPET } from './oned-conf/oned-conf.js';
import { editConfigFile } from './edit-config-file.js';
import { editOnedConf } from './oned-conf/edit-oned-conf.js';
import { editVmmExecrc, ourLiveSnapshotPairs } from './vmm-execrc/edit-vmm-execrc.js';
import { initCa, issueCertificate } from '../../common/src/pki/pki.js';
import { CERTIFICATE_ROLES } from '../../common/src/certificate-role.js';
import { installShims } from '../../shims/src/install.js';
import { uninstallShims } from '../../shims/src/uninstall.js';
import { COMMAND_HELP, usageLines } from './help.js';
import { runStatus } from './status/status-command.js';
import { DEFAULT_ONED_CONF, DEFAULT_VMM_EXECRC, runDoctor } from './doctor/doctor-command.js';

import { DEFAULT_COORDINATOR_CONFIG, DEFAULT_SOCKET } from './defaults.js';
import { cancelCommand, jobsCommand } from './jobs/jobs-command.js';
const EXIT_USAGE = 2;
const CONSOLE = { print: (line: string) => console.log(line), error: (line: string) => console.error(line) };

const USAGE = usageLines();

async function main(argv: string[]): Promise<number> {
  const [command, sub] = argv;
  const single =
    command === 'demo' ||
    command === 'journal' ||
    command === 'oned-conf' ||
    command === 'vmm-execrc' ||
    command === 'status' ||
    command === 'jobs' ||
    command === 'cancel' ||
    command === 'doctor';
  const rest = argv.slice(single ? 1 : 2);
  const name = `${command ?? ''} ${single ? '' : (sub ?? '')}`.trim();
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    // `pki --help` shows both pki commands; `pki issue --help` the one.
    const group = !single && (sub === undefined || sub.startsWith('-'));
    const helps = Object.entries(COMMAND_HELP)
      .filter(([key]) => key === name || (group && key.startsWith(`${command} `)))
      .map(([, help]) => help);
    if (helps.length === 0) return usage(`unknown command "${argv.slice(0, 2).join(' ')}"`);
    console.log(helps.join('\n\n'));
    return 0;
  }
  switch (name) {
    case 'pki init': {
      const { values } = parseArgs({ args: rest, options: { dir: { type: 'string' } }, strict: true });
      if (!values.dir) return usage('pki init needs --dir');
      const r = await initCa(values.dir);
      console.log(r.created ? `created CA ${r.files.cert}` : `CA ${r.files.cert} already exists; kept`);
      return 0;
    }
    case 'pki issue': {
      const { values } = parseArgs({
        args: rest,
        options: {
          dir: { type: 'string' },
          name: { type: 'string' },
          role: { type: 'string', default: 'agent' },
          ip: { type: 'string', multiple: true },
          force: { type: 'boolean' },
        },
        strict: true,
      });
      if (!values.dir || !values.name) return usage('pki issue needs --dir and --name');
      const role = CERTIFICATE_ROLES.find((r) => r === values.role);
      if (!role) return usage(`pki issue --role must be ${CERTIFICATE_ROLES.join(' or ')}`);
      const r = await issueCertificate(values.dir, values.name, values.ip ?? [], values.force ?? false, role);
      console.log(
        r.created
          ? `issued ${r.files.cert} (role ${role}) and ${r.files.key}`
          : `${r.files.cert} (role ${role}) already exists; kept`,
      );
      return 0;
    }
    case 'shims install': {
      const { values } = parseArgs({
        args: rest,
        options: { remotes: { type: 'string' }, socket: { type: 'string' }, runtime: { type: 'string' } },
        strict: true,
      });
      if (!values.remotes) return usage('shims install needs --remotes');
      const r = await installShims({
        remotesDir: values.remotes,
        socketPath: values.socket ?? DEFAULT_SOCKET,
        ...(values.runtime ? { runtimeDir: values.runtime } : {}),
      });
      console.log(`installed ${r.files.length} shims under ${values.remotes} (${r.written.length} written)`);
      return 0;
    }
    case 'shims uninstall': {
      const { values } = parseArgs({ args: rest, options: { remotes: { type: 'string' } }, strict: true });
      if (!values.remotes) return usage('shims uninstall needs --remotes');
      const r = await uninstallShims({ remotesDir: values.remotes });
      console.log(
        `removed ${r.removed.length} shims and probes under ${values.remotes}, restored ${r.restored.length} OpenNebula probes`,
      );
      return 0;
    }
    case 'demo': {
      const { values } = parseArgs({ args: rest, options: { stay: { type: 'boolean' } }, strict: true });
      return runDemo({ stay: values.stay ?? false });
    }
    case 'journal': {
      const { values } = parseArgs({
        args: rest,
        options: {
          db: { type: 'string' },
          limit: { type: 'string' },
          request: { type: 'string' },
          json: { type: 'boolean' },
        },
        strict: true,
      });
      const limit = Number(values.limit ?? '20');
      if (!Number.isInteger(limit) || limit <= 0) return usage('journal --limit must be a positive integer');
      const lines = showJournal({
        db: values.db ?? DEFAULT_JOURNAL,
        limit,
        json: values.json ?? false,
        ...(values.request ? { request: values.request } : {}),
      });
      for (const line of lines) console.log(line);
      return 0;
    }
    case 'status': {
      const { values } = parseArgs({
        args: rest,
        options: {
          config: { type: 'string', default: DEFAULT_COORDINATOR_CONFIG },
          agent: { type: 'string', multiple: true },
          'timeout-ms': { type: 'string', default: '10000' },
          json: { type: 'boolean' },
        },
        strict: true,
      });
      const timeoutMs = Number(values['timeout-ms']);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
        return usage('status --timeout-ms must be an integer >= 100');
      return runStatus(
        { config: values.config, agents: values.agent ?? [], timeoutMs, json: values.json ?? false },
        CONSOLE,
      );
    }
    case 'doctor': {
      const { values } = parseArgs({
        args: rest,
        options: {
          config: { type: 'string', default: DEFAULT_COORDINATOR_CONFIG },
          host: { type: 'string' },
          'oned-conf': { type: 'string', default: DEFAULT_ONED_CONF },
          'vmm-execrc': { type: 'string', default: DEFAULT_VMM_EXECRC },
          'timeout-ms': { type: 'string', default: '30000' },
          json: { type: 'boolean' },
        },
        strict: true,
      });
      const timeoutMs = Number(values['timeout-ms']);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
        return usage('doctor --timeout-ms must be an integer >= 100');
      return runDoctor(
        {
          config: values.config,
          ...(values.host !== undefined ? { host: values.host } : {}),
          onedConf: values['oned-conf'],
          vmmExecrc: values['vmm-execrc'],
          timeoutMs,
          json: values.json ?? false,
        },
        CONSOLE,
      );
    }
    case 'jobs':
      return jobsCommand(rest, usage);
    case 'cancel':
      return cancelCommand(rest, usage);
    case 'oned-conf':
      return editCommand('oned-conf', rest, ONED_CONF_SNIPPET, editOnedConf);
    case 'vmm-execrc':
      return editCommand(
        'vmm-execrc',
        rest,
        `LIVE_DISK_SNAPSHOTS: add ${ourLiveSnapshotPairs().join(' ')}\n`,
        editVmmExecrc,
      );
    default:
      return usage(command ? `unknown command "${argv.slice(0, 2).join(' ')}"` : 'no command given');
  }
}

/**
 * `one-storage oned-conf|vmm-execrc [--apply FILE | --remove FILE] [--check]`: without a file,
 * prints what would be added; with one, edits it (or with --check says whether it would) and prints
 * `changed|would change|unchanged FILE`, the word the Ansible role keys its `changed_when` on.
 */
async function editCommand(
  name: string,
  rest: string[],
  snippet: string,
  edit: (text: string, edit: 'apply' | 'remove', file: string) => string,
): Promise<number> {
  const { values } = parseArgs({
    args: rest,
    options: { apply: { type: 'string' }, remove: { type: 'string' }, check: { type: 'boolean' } },
    strict: true,
  });
  if (values.apply && values.remove) return usage(`${name} takes --apply or --remove, not both`);
  const file = values.apply ?? values.remove;
  if (!file) {
    if (values.check) return usage(`${name} --check needs --apply or --remove`);
    process.stdout.write(snippet);
    return 0;
  }
  const kind = values.apply ? 'apply' : 'remove';
  const changed = await editConfigFile(file, (text) => edit(text, kind, file), values.check ?? false);
  console.log(`${changed ? (values.check ? 'would change' : 'changed') : 'unchanged'} ${file}`);
  return 0;
}

function usage(problem: string): number {
  console.error(`one-storage: ${problem}\n${USAGE}`);
  return EXIT_USAGE;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`one-storage: ${message}`);
    process.exitCode = 1;
  },
);
