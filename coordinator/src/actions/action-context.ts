import type { ShimKind } from '../../../common/src/drivers/driver-actions.js';
import type { Logger } from '../../../common/src/log.js';
import type { AgentRegistry } from '../agents/agent-registry.js';
import type { CoordinatorConfig } from '../config.js';
import type { AgentOps } from '../agents/agent-calls.js';
import type { Signature } from './action-args.js';

/**
 * What an action handler needs of oned's objects, through oned's API: reading them, and (backup
 * restore, docs/backups.md#the-restore-action) creating, giving away and deleting images and VM templates.
 */
export interface OnedLookup {
  vmXml(id: number): Promise<string>;
  datastoreXml(id: number): Promise<string>;
  imageXml(id: number): Promise<string>;
  allocateImage(template: string, dsId: number): Promise<number>;
  allocateTemplate(template: string): Promise<number>;
  chownImage(id: number, uid: number, gid: number): Promise<void>;
  chownTemplate(id: number, uid: number, gid: number): Promise<void>;
  deleteImage(id: number, force: boolean): Promise<void>;
  deleteTemplate(id: number): Promise<void>;
  userByName(name: string): Promise<{ id: number; gid: number } | undefined>;
}

/** Everything one driver call carries through the coordinator. */
export interface ActionContext {
  requestId: string;
  kind: ShimKind;
  driver: string;
  /** The action as called, lower-case, with any mixed-mode suffix. */
  action: string;
  args: readonly string[];
  stdin: Buffer;
  signal: AbortSignal;
  /** Sends an INFO line to the shim at once (it lands in the VM log). */
  info(message: string): void;
  ops: AgentOps;
  agents: AgentRegistry;
  oned: OnedLookup;
  config: Readonly<CoordinatorConfig>;
  logger: Logger;
}

/** What a handler returns: the stdout oned reads as the action's result (TM actions print nothing). */
export interface ActionResult {
  stdout: string;
}

/** A driver action's handler, carrying its declaration (define-action.ts makes them). */
export interface ActionHandler {
  (ctx: ActionContext): Promise<ActionResult>;
  /** The arguments and stdin oned sends it. */
  readonly signature: Signature;
  /** What it does, in a short sentence (the README's table of actions). */
  readonly does: string;
}

export const NO_OUTPUT: ActionResult = Object.freeze({ stdout: '' });
