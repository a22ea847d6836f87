import { StorageError } from '../../../common/src/errors.js';

/** Placeholder for an RPC whose handler is being built; answers UNSUPPORTED_ACTION. */
export function notBuiltYet(rpc: string): () => Promise<never> {
  return () =>
    Promise.reject(new StorageError('UNSUPPORTED_ACTION', `${rpc} is not implemented by this agent yet`));
}
