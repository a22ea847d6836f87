import { afterEach, describe, expect, it, vi } from 'vitest';
import { ticketId } from './session-keys.js';
import { TicketStore } from './tickets.js';

describe('TicketStore on its default clock', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it.each([
    ['forward by a day', 86_400_000],
    ['back by a day', -86_400_000],
  ])('a wall clock stepping %s neither expires a ticket nor keeps an expired one', (_, stepMs) => {
    const store = new TicketStore<string>();
    const { ticket } = store.issue('payload', 300);
    const wall = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(wall + stepMs);
    expect(store.peek(ticketId(ticket))).toEqual({ ticket, payload: 'payload' });
    const spent = store.issue('short', 0.001);
    const realNow = performance.now();
    vi.spyOn(performance, 'now').mockReturnValue(realNow + 1_000);
    expect(store.peek(ticketId(spent.ticket))).toEqual({ refused: 'expired' });
  });
});
