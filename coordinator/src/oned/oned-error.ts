import { status } from '@grpc/grpc-js';

/**
 * A failed call to oned. `message` is the one line a person reads (it may become a VM's error
 * message); `code` lets callers tell NOT_FOUND from an outage; `details` is oned's own text.
 */
export class OnedError extends Error {
  override readonly name = 'OnedError';

  constructor(
    message: string,
    readonly code: status,
    readonly details: string,
  ) {
    super(message);
  }

  /** The status code's name, e.g. "NOT_FOUND". */
  get codeName(): string {
    return statusName(this.code);
  }
}

export function statusName(code: status): string {
  return status[code] ?? `code ${code}`;
}
