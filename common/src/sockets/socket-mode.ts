/**
 * Mode of the daemons' UNIX sockets: read and write for the owner and the group. oned runs the
 * shims and the probes as oneadmin, a member of the socket's group; nobody else may connect.
 */
export const GROUP_SOCKET_MODE = 0o660;
