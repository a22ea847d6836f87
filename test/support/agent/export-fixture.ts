/**
 * A real agent (host01, mutual TLS on loopback) with its export listener on 127.0.0.1, an
 * injected clock for expiry and its whole log captured as text, plus curl run the way OpenNebula's
 * downloader.sh runs it. Call `const ctx = useExportAgent()` at the top of a test file.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { pkiFiles } from '../../../common/src/pki/pki.js';
import type { AgentServiceClient } from '../../../proto/gen/onestorage/agent/v1/agent.js';
import { parseAgentConfig } from '../../../agent/src/config.js';
import { type RunningAgent, startAgent } from '../../../agent/src/server.js';
import {
  AGENT_NAME,
  LOCATION,
  type Pki,
  agentClient,
  makeDatastores,
  makePki,
  makeTempDir,
} from './agent-fixture.js';
import { waitForLine } from '../log-capture.js';

/** How long a test waits for a log line it expects before failing. */
const LOG_WAIT_MS = 10_000;
/** The injected clock's start (any fixed instant). */
export const CLOCK_START_MS = Date.UTC(2030, 0, 1);

export interface ExportAgent {
  base: string;
  root: string;
  pki: Pki;
  agent: RunningAgent;
  client: AgentServiceClient;
  /** The agent's clock: tests move `now` to expire exports. */
  clock: { now: number };
  /** Everything the agent logged so far, as written. */
  logText(): string;
  /** The parsed log lines so far. */
  logLines(): Array<Record<string, unknown>>;
  /** Resolves with the first log line (already written or to come) for which `match` holds. */
  waitForLog(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  local(rel: string): string;
}

export const ds = (rel: string): string => `${LOCATION}/${rel}`;

export function useExportAgent(
  exportConfig: Record<string, unknown> = { listen: '127.0.0.1:0' },
): ExportAgent {
  let text = '';
  const lines: Array<Record<string, unknown>> = [];
  const written = new EventEmitter();
  const ctx = {
    clock: { now: CLOCK_START_MS },
    logText: () => text,
    logLines: () => [...lines],
    local: (rel: string) => join(ctx.root, rel),
    waitForLog: (match) => waitForLine(lines, written, match, LOG_WAIT_MS),
  } as Partial<ExportAgent> as ExportAgent;

  beforeAll(async () => {
    ctx.base = await makeTempDir('export-agent-');
    ctx.pki = await makePki(ctx.base);
    ctx.root = await makeDatastores(ctx.base);
    const config = parseAgentConfig(
      {
        name: AGENT_NAME,
        listen: '127.0.0.1:0',
        roots: [{ location: LOCATION, path: ctx.root }],
        tls: pkiFiles(ctx.pki.dir, AGENT_NAME),
        export: exportConfig,
      },
      'export test config',
    );
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        text += chunk.toString();
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          lines.push(parsed);
          written.emit('line', parsed);
        }
        done();
      },
    });
    ctx.agent = await startAgent(config, pino({ level: 'debug' }, sink), undefined, {
      now: () => ctx.clock.now,
    });
    ctx.client = agentClient(ctx.agent.port, ctx.pki.dir);
  });

  afterAll(async () => {
    ctx.client?.close();
    await ctx.agent?.close();
    if (ctx.base) await rm(ctx.base, { recursive: true, force: true });
  });
  return ctx;
}

function run(
  file: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, LANG: 'C' } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * `curl --fail -sS -k -L URL -o FILE`: how downloader.sh fetches an http(s) IMPORT_SOURCE for the
 * marketplace drivers. Returns curl's exit code (22: an HTTP error status) and stderr.
 */
export async function fetchLikeDownloader(
  url: string,
  file: string,
): Promise<{ code: number; stderr: string }> {
  const { code, stderr } = await run('curl', ['--fail', '-sS', '-k', '-L', url, '-o', file]);
  return { code, stderr };
}

export interface CurlAnswer {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Buffer;
}

/** One request with curl (-k), reporting the status, headers and body; `extra` adds options. */
export async function curlRequest(url: string, extra: readonly string[] = []): Promise<CurlAnswer> {
  const dir = await makeTempDir('curl-');
  try {
    const headerFile = join(dir, 'headers');
    const bodyFile = join(dir, 'body');
    const { code, stdout, stderr } = await run('curl', [
      '-sS',
      '-k',
      '-D',
      headerFile,
      '-o',
      bodyFile,
      '-w',
      '%{http_code}',
      ...extra,
      url,
    ]);
    if (code !== 0) throw new Error(`curl ${code}: ${stderr}`);
    const headers: Record<string, string> = {};
    for (const line of readFileSync(headerFile, 'utf8').split('\r\n').slice(1)) {
      const at = line.indexOf(':');
      if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
    }
    const body = await readFile(bodyFile).catch(() => Buffer.alloc(0));
    return { status: Number(stdout), headers, body };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function md5Of(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}
