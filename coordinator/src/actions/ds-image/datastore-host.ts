import { StorageError } from '../../../../common/src/errors.js';
import type { ActionContext } from '../action-context.js';
import { whyNotAnswering } from './agent-answers.js';

export interface BridgeChoice {
  /** BRIDGE_LIST (or SOURCE_BRIDGE_LIST) as oned sent it, split on blanks; empty: the front-end. */
  bridgeList: readonly string[];
  /** The image id (the app id for export): the round-robin index, as fs's get_destination_host. */
  id: number;
  /** Who is asking, for errors: "image 7". */
  owner: string;
  /** Which list, for errors: "BRIDGE_LIST of datastore 1". */
  list: string;
}

/**
 * Where an image of the datastore lives, or lands (docs/image-datastore.md#where-an-image-lives):
 * without a bridge list, the front-end's agent; with one, the listed hosts whose agents answer
 * Hello (asked all at once: whyNotAnswering), and among those, in list order, the one at
 * `id % count`. A listed host with no agent configured is UNKNOWN_HOST; when none answers the call
 * fails (NO_HEALTHY_BRIDGE, each host with its reason): it never falls back to the front-end,
 * which holds no copy of a bridged datastore.
 */
export async function datastoreHost(ctx: ActionContext, choice: BridgeChoice): Promise<string> {
  if (choice.bridgeList.length === 0) return ctx.agents.frontend;
  if (!Number.isSafeInteger(choice.id) || choice.id < 0) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `${choice.owner}: id ${choice.id} cannot pick a host of ${choice.list}`,
    );
  }
  const names = choice.bridgeList.map((host) => {
    try {
      return ctx.agents.get(host).agent.name;
    } catch (err) {
      const e = err as StorageError;
      throw new StorageError(e.reason, `${choice.owner}: ${choice.list} names ${e.message}`);
    }
  });
  const unique = [...new Set(names)];
  const answers = await Promise.all(unique.map((name) => whyNotAnswering(ctx, name)));
  const down = new Map<string, string>();
  unique.forEach((name, i) => {
    const why = answers[i];
    if (why !== undefined) down.set(name, why);
  });
  const healthy = names.filter((name) => !down.has(name));
  for (const [host, why] of down) {
    ctx.logger.warn({ host, why }, `${choice.owner}: ${choice.list} host passed over`);
  }
  if (healthy.length === 0) {
    const reasons = [...down].map(([host, why]) => `${host} (${why})`).join('; ');
    throw new StorageError(
      'NO_HEALTHY_BRIDGE',
      `${choice.owner}: no host of ${choice.list} answers: ${reasons}`,
    );
  }
  return healthy[choice.id % healthy.length] as string;
}
