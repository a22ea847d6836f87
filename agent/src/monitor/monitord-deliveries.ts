/**
 * The last datagram the agent sent to monitord and the last failure (push mode), for Health and
 * `one-storage status`: UDP has no acknowledgement, so "sent without a refusal" is what is known.
 */
export class MonitordDeliveries {
  /** ms since the epoch of the last send that went out without an error; 0 when none yet. */
  lastDeliveryMs = 0;
  /** The last failure, one line; cleared by the next delivery. */
  lastError = '';

  delivered(atMs: number): void {
    this.lastDeliveryMs = atMs;
    this.lastError = '';
  }

  failed(why: string): void {
    this.lastError = why;
  }
}
