import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * Stable reasons for every error the system reports. docs/errors.md documents each one and a
 * test fails when a reason here is missing there. Messages are for people (what, where, why);
 * reasons are for programs and dashboards.
 */
export const Reasons = {
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  BAD_HOST_PATH: GrpcStatus.INVALID_ARGUMENT,
  UNSAFE_PATH: GrpcStatus.INVALID_ARGUMENT,
  PATH_OUTSIDE_ROOTS: GrpcStatus.PERMISSION_DENIED,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  BAD_LAYOUT: GrpcStatus.FAILED_PRECONDITION,
  LOCKED: GrpcStatus.ABORTED,
  NO_SPACE: GrpcStatus.RESOURCE_EXHAUSTED,
  CHECKSUM_MISMATCH: GrpcStatus.DATA_LOSS,
  TOOL_FAILED: GrpcStatus.INTERNAL,
  UNKNOWN_HOST: GrpcStatus.FAILED_PRECONDITION,
  AGENT_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  ONED_FAILED: GrpcStatus.UNAVAILABLE,
  UNSUPPORTED_ACTION: GrpcStatus.UNIMPLEMENTED,
  TICKET_INVALID: GrpcStatus.PERMISSION_DENIED,
  CALLER_NOT_COORDINATOR: GrpcStatus.PERMISSION_DENIED,
  TRANSFER_FAILED: GrpcStatus.INTERNAL,
  CONFIG_INVALID: GrpcStatus.INVALID_ARGUMENT,
  MONITORD_UNREACHABLE: GrpcStatus.UNAVAILABLE,
  DOMAIN_NOT_FOUND: GrpcStatus.NOT_FOUND,
  DOMAIN_NOT_RUNNING: GrpcStatus.FAILED_PRECONDITION,
  BUSY: GrpcStatus.ABORTED,
  BAD_IMAGE: GrpcStatus.INVALID_ARGUMENT,
  PATH_RESTRICTED: GrpcStatus.PERMISSION_DENIED,
  SOURCE_UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  NO_HEALTHY_BRIDGE: GrpcStatus.UNAVAILABLE,
  EXPORT_DISABLED: GrpcStatus.FAILED_PRECONDITION,
  CANCELLED: GrpcStatus.CANCELLED,
  INTERNAL: GrpcStatus.INTERNAL,
} as const;

export type Reason = keyof typeof Reasons;

/** Trailing-metadata key that carries the reason across gRPC. */
export const REASON_METADATA_KEY = 'x-reason';

/** The one error class: a stable reason, its gRPC code, and a one-line human message. */
export class StorageError extends Error {
  readonly reason: Reason;
  readonly code: GrpcStatus;

  constructor(reason: Reason, message: string, options?: { cause?: unknown }) {
    super(oneLine(message), options);
    this.name = 'StorageError';
    this.reason = reason;
    this.code = Reasons[reason];
  }
}

/** Collapses whitespace and newlines so a message always fits oned's one-line protocol. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Maps a Node errno (ENOSPC, ENOENT, ...) thrown by fs to a reason and a short "why". */
export function reasonForErrno(err: unknown): { reason: Reason; why: string } {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return { reason: 'NO_SPACE', why: 'no space left on the destination filesystem' };
    case 'EFBIG':
      return { reason: 'NO_SPACE', why: 'file too large for the destination filesystem' };
    case 'ENOENT':
      return { reason: 'NOT_FOUND', why: 'no such file or directory' };
    case 'EEXIST':
      return { reason: 'ALREADY_EXISTS', why: 'already exists' };
    case 'EACCES':
    case 'EPERM':
      return { reason: 'INTERNAL', why: 'permission denied' };
    case 'EROFS':
      return { reason: 'INTERNAL', why: 'read-only filesystem' };
    // The caller named something that is not what the action needs: its input, not our fault.
    case 'EISDIR':
      return { reason: 'INVALID_ARGUMENT', why: 'is a directory, not a file' };
    case 'ENOTDIR':
      return { reason: 'NOT_FOUND', why: 'a part of the path is a file, not a directory' };
    case 'ELOOP':
      return { reason: 'INVALID_ARGUMENT', why: 'too many levels of symbolic links' };
    case 'ENAMETOOLONG':
      return { reason: 'INVALID_ARGUMENT', why: 'a name in the path is too long' };
    default:
      return { reason: 'INTERNAL', why: err instanceof Error ? oneLine(err.message) : String(err) };
  }
}

/** Wraps any thrown value as a StorageError about `what` at `where`. StorageErrors pass through. */
export function asStorageError(err: unknown, what: string, where: string): StorageError {
  if (err instanceof StorageError) return err;
  const { reason, why } = reasonForErrno(err);
  return new StorageError(reason, `${what} ${where}: ${why}`, { cause: err });
}
