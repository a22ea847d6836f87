// Runs one generated receiver conversation against an agent's data listener and reports what the
// agent did: served the whole transfer (checked: MAC, per-file digests, the bytes), refused with an
// ERROR frame, or closed; and whether it did so within the deadline.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { TlsMaterial } from '../../common/src/tls.js';
import {
  isDigestAlgorithm,
  runningDigest,
  type DigestAlgorithm,
} from '../../agent/src/transfer/digest-algorithms.js';
import { sessionKey, TranscriptMac, sameBytes } from '../../agent/src/transfer/session-keys.js';
import { tlsCipherOptions } from '../../agent/src/transfer/tls-options.js';
import { FrameReader, FrameType, HEADER_BYTES } from '../../agent/src/transfer/wire.js';
import { helloBytes, proofBytes, trailingBytes, type ClientCase } from './data-path-client-scripts.js';

export interface ClientOutcome {
  /** MANIFEST, every file's data and digest, and a matching END arrived, and the data is `expect`. */
  served: boolean;
  sawManifest: boolean;
  errors: Array<{ reason: unknown; message: unknown }>;
  /** Closed by the agent (or after our end) within the deadline. */
  closed: boolean;
  /** The script was complete and honest up to the proof (the agent must then serve or refuse). */
  honest: boolean;
  /** A valid PROOF was sent: the ticket, if it was good, is now used. */
  sentProof: boolean;
  problems: string[];
}

export interface Target {
  port: number;
  /** The receiver's certificate (the name the ticket is bound to). */
  material: TlsMaterial;
  /** The agent's certificate name. */
  agentName: string;
  ticket: string;
  /** The content of the file the ticket sends. */
  expect: Buffer;
}

export function runClient(c: ClientCase, t: Target, deadlineMs: number): Promise<ClientOutcome> {
  const out: ClientOutcome = {
    served: false,
    sawManifest: false,
    errors: [],
    closed: false,
    honest: false,
    sentProof: false,
    problems: [],
  };
  const clientNonce = randomBytes(16);
  const hello = helloBytes(c, t.ticket, clientNonce);
  out.honest = hello.honest && c.garbage === undefined && c.cut === 1;
  const socket =
    c.transport === 'tls' && !c.garbage
      ? tls.connect({
          host: '127.0.0.1',
          port: t.port,
          ...t.material,
          checkServerIdentity: (_h, cert) => tls.checkServerIdentity(t.agentName, cert),
          ...tlsCipherOptions,
        })
      : net.connect({ host: '127.0.0.1', port: t.port });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      out.problems.push(`no answer and no close within ${deadlineMs} ms`);
      socket.destroy();
    }, deadlineMs);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      out.closed = !out.problems.some((p) => p.startsWith('no answer'));
      resolve(out);
    });
    const cutAt = (bytes: Buffer, from: number): Buffer =>
      bytes.subarray(0, Math.floor(Math.min(1, Math.max(0, (c.cut - from) * 2)) * bytes.length));
    socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => {
      if (c.garbage) {
        socket.end(Buffer.concat([c.garbage, hello.bytes]));
        return;
      }
      socket.write(c.cut < 1 ? cutAt(hello.bytes, 0) : hello.bytes);
      // A frame the agent cannot complete: it waits for more, as it should; our end tells it no more comes.
      const waits = c.hello.k === 'length' && c.hello.longer;
      if (c.cut < 0.5 || waits) socket.end();
    });
    let mac: TranscriptMac | undefined;
    let read = 0;
    let file = 0;
    // The check the agent named in its MANIFEST (SHA-256 until then, and if it names none).
    let check: DigestAlgorithm = 'sha256';
    let hash = runningDigest(check);
    let data: Buffer[] = [];
    const reader = new FrameReader({
      control: (type, payload, frame) => {
        if (type === FrameType.ERROR) {
          out.errors.push(JSON.parse(payload.toString()) as { reason: unknown; message: unknown });
        } else if (type === FrameType.CHALLENGE && !mac) {
          const nonce = Buffer.from((JSON.parse(payload.toString()) as { nonce: string }).nonce, 'hex');
          mac = new TranscriptMac(sessionKey(t.ticket, clientNonce, nonce));
          const proof = proofBytes(c, t.ticket, clientNonce, nonce);
          const sent = c.cut < 1 ? cutAt(proof, 0.5) : Buffer.concat([proof, trailingBytes(c)]);
          out.sentProof = (c.proof === 'valid' || c.proof === 'twice') && sent.length >= HEADER_BYTES + 32;
          if (c.cut < 1) {
            socket.end(sent);
            return;
          }
          socket.write(sent);
          if (c.proof === 'missing') socket.end();
        } else if (type === FrameType.MANIFEST && mac) {
          out.sawManifest = true;
          mac.add(frame);
          const named = (JSON.parse(payload.toString()) as { digest?: unknown }).digest;
          if (!isDigestAlgorithm(named)) out.problems.push(`MANIFEST names the check ${String(named)}`);
          else if (c.transport !== 'tls' && named !== 'sha256')
            out.problems.push(`the plaintext mode got ${named}, not SHA-256`);
          else check = named;
          hash = runningDigest(check);
        } else if (type === FrameType.FILE_DONE && mac) {
          mac.add(frame);
          if (!sameBytes(payload, hash.digest()))
            out.problems.push(`file ${file}: digest does not match its data`);
          file += 1;
          hash = runningDigest(check);
        } else if (type === FrameType.END && mac) {
          const whole = Buffer.concat(data);
          if (!sameBytes(payload, mac.digest())) out.problems.push('END: MAC does not match');
          else if (!whole.equals(t.expect)) out.problems.push('the data is not the source file');
          else out.served = true;
          data = [];
        } else {
          out.problems.push(`unexpected frame 0x${type.toString(16)} from the agent`);
        }
      },
      data: (bytes) => {
        hash.update(bytes);
        data.push(Buffer.from(bytes));
      },
    });
    socket.on('data', (chunk: Buffer) => {
      read += chunk.length;
      try {
        reader.push(chunk);
      } catch (err) {
        // Garbage that starts like a TLS record goes to the agent's TLS stack, which answers in TLS.
        if (c.garbage?.[0] !== 0x16) out.problems.push(`unreadable answer: ${(err as Error).message}`);
        socket.destroy();
      }
      if (read >= c.readUpTo) socket.destroy();
    });
  });
}
