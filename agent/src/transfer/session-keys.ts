import { createHash, createHmac, timingSafeEqual, type Hmac } from 'node:crypto';

/**
 * Keys of one data-path session, all derived from the single-use ticket that travelled over
 * mutual-TLS gRPC (sending agent → coordinator → receiving agent).
 *
 * The ticket itself never crosses the data connection: the client names it by its hash and proves
 * it holds it with an HMAC over both sides' nonces, so a recorded conversation cannot be replayed
 * and, in the plaintext mode, an eavesdropper learns nothing that lets it pull the data itself.
 * The server MACs every control frame it sends (manifest and per-file digests) with the same key,
 * so the receiver knows the manifest and the digests came from the agent that issued the ticket,
 * and in the plaintext mode, where the digests are SHA-256, through them every data byte. Under TLS
 * this is redundant but harmless (there TLS authenticates every byte, and the digests are XXH3,
 * which only catches accidental damage); it is what makes the optional plaintext mode authenticated.
 */
const KEY_LABEL = 'onestorage data path v1';

/** The public name of a ticket: what the client sends in HELLO, and the ticket store's key. */
export function ticketId(ticket: string): string {
  return createHash('sha256').update('onestorage ticket id\0').update(ticket).digest('hex');
}

export function sessionKey(ticket: string, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return createHmac('sha256', ticket).update(KEY_LABEL).update(clientNonce).update(serverNonce).digest();
}

export function clientProof(key: Buffer): Buffer {
  return createHmac('sha256', key).update('client proof').digest();
}

export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Running HMAC over the control frames the server sends, in order. */
export class TranscriptMac {
  private readonly hmac: Hmac;

  constructor(key: Buffer) {
    this.hmac = createHmac('sha256', key).update('server transcript');
  }

  add(frame: Buffer): void {
    this.hmac.update(frame);
  }

  digest(): Buffer {
    return this.hmac.digest();
  }
}
