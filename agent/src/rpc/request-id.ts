import type { Metadata } from '@grpc/grpc-js';

/** Metadata key the coordinator sets so one driver call can be followed across daemons' logs. */
export const REQUEST_ID_METADATA_KEY = 'x-request-id';
/** Request ids are the coordinator's (UUID-like); anything else is cut and cleaned before logging. */
const MAX_REQUEST_ID_LENGTH = 128;
const REQUEST_ID_UNSAFE = /[^A-Za-z0-9._:-]/g;

/** The request id of a call, if the caller sent one. */
export function requestIdOf(metadata: Metadata): string | undefined {
  const value = metadata.get(REQUEST_ID_METADATA_KEY)[0];
  if (typeof value !== 'string' || value === '') return undefined;
  return value.slice(0, MAX_REQUEST_ID_LENGTH).replace(REQUEST_ID_UNSAFE, '_');
}
