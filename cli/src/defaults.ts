/** Where the coordinator listens unless the config says otherwise. */
export const DEFAULT_SOCKET = '/run/one-storage/coordinator.sock';
/** The coordinator's config as the Ansible roles install it. */
export const DEFAULT_COORDINATOR_CONFIG = '/etc/one-storage/coordinator.yaml';
