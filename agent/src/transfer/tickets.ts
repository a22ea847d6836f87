import { randomBytes } from 'node:crypto';
import { ticketId } from './session-keys.js';

/** OpenSend's default when the request leaves ttl_seconds at 0. */
export const DEFAULT_TICKET_TTL_SECONDS = 300;
/** A ticket is a capability: 32 random bytes, as hex. */
const TICKET_BYTES = 32;

export type TicketRefusal = 'unknown' | 'expired' | 'used';

interface Entry<T> {
  ticket: string;
  payload: T;
  expiresAt: number;
  used: boolean;
}

/**
 * Single-use, expiring tickets for the data path, keyed by their public id (see session-keys.ts).
 * A used or expired ticket is remembered until its expiry passes, so a second use is reported as
 * "already used" rather than "unknown", which tells an operator what actually happened.
 */
export class TicketStore<T> {
  private readonly entries = new Map<string, Entry<T>>();

  /**
   * `now` is the monotonic clock: a ticket lives ttl seconds of real time, whatever the wall clock
   * does meanwhile (a step forward would expire every ticket at once, a step back keep them).
   */
  constructor(private readonly now: () => number = () => performance.now()) {}

  issue(payload: T, ttlSeconds: number): { ticket: string; expiresAt: number } {
    this.sweep();
    const ticket = randomBytes(TICKET_BYTES).toString('hex');
    const expiresAt = this.now() + ttlSeconds * 1000;
    this.entries.set(ticketId(ticket), { ticket, payload, expiresAt, used: false });
    return { ticket, expiresAt };
  }

  /**
   * The ticket behind `id` and what it grants, if it may still be used (the caller then checks who
   * presents it, has it proven and consumes it).
   */
  peek(id: string): { ticket: string; payload: T } | { refused: TicketRefusal } {
    const e = this.entries.get(id);
    if (!e) return { refused: 'unknown' };
    if (e.used) return { refused: 'used' };
    if (this.now() >= e.expiresAt) return { refused: 'expired' };
    return { ticket: e.ticket, payload: e.payload };
  }

  /** Marks the ticket used and returns its payload; only the first caller gets it. */
  consume(id: string): { payload: T } | { refused: TicketRefusal } {
    const state = this.peek(id);
    if ('refused' in state) return state;
    const e = this.entries.get(id) as Entry<T>;
    e.used = true;
    return { payload: e.payload };
  }

  clear(): void {
    this.entries.clear();
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, e] of this.entries) if (now >= e.expiresAt) this.entries.delete(id);
  }
}

export function describeRefusal(r: TicketRefusal): string {
  switch (r) {
    case 'unknown':
      return 'ticket unknown to the sender (never issued, or the sender restarted)';
    case 'expired':
      return 'ticket expired';
    case 'used':
      return 'ticket already used';
  }
}
