import { StorageError } from '../../../common/src/errors.js';
import type { AgentContext } from './context.js';

/** A required string field: empty (proto3's "unset") is INVALID_ARGUMENT naming the field. */
export function requireField(agent: AgentContext, method: string, field: string, value: string): string {
  if (value === '')
    throw new StorageError('INVALID_ARGUMENT', `${method} on ${agent.name}: ${field} is required`);
  return value;
}

/** A required positive integer (proto3 sends 0 for unset). */
export function requirePositive(agent: AgentContext, method: string, field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${method} on ${agent.name}: ${field} must be a positive integer`,
    );
  }
  return value;
}

/** A string field that must be one of `allowed`: INVALID_ARGUMENT naming the field and the values. */
export function oneOf<T extends string>(
  agent: AgentContext,
  method: string,
  field: string,
  value: string,
  allowed: readonly T[],
): T {
  const found = allowed.find((a) => a === value);
  if (found !== undefined) return found;
  throw new StorageError(
    'INVALID_ARGUMENT',
    `${method} on ${agent.name}: ${field} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`,
  );
}

/** A required path field, in oned's view, normalized and checked by the roots (paths/roots.ts). */
export function requirePath(agent: AgentContext, method: string, field: string, value: string): string {
  return agent.roots.normalize(requireField(agent, method, field, value), field);
}

/**
 * A required enum field of the contract, turned into the name the agent's internals use: `names`
 * maps each allowed value to it. UNSPECIFIED (0, proto3's "unset") and a number this agent does not
 * know are INVALID_ARGUMENT naming the field and the allowed values, as `oneOf` does for strings.
 */
export function enumName<E extends number, T extends string>(
  agent: AgentContext,
  method: string,
  field: string,
  value: E,
  names: ReadonlyMap<E, T>,
): T {
  const found = names.get(value);
  if (found !== undefined) return found;
  throw new StorageError(
    'INVALID_ARGUMENT',
    `${method} on ${agent.name}: ${field} must be one of ${[...names.values()].join(', ')} (got ${value === 0 ? 'UNSPECIFIED' : value})`,
  );
}
