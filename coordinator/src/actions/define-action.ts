import type { ArgDecl, ParsedArgs, Signature } from './action-args.js';
import type { ActionContext, ActionHandler, ActionResult } from './action-context.js';
import { parseActionArgs } from './parse-action-args.js';

/** An action's declaration: its arguments and what it does. */
export interface ActionDecl<A extends readonly ArgDecl[]> {
  signature: Signature<A>;
  does: string;
}

/**
 * A handler whose arguments are checked and parsed from its declaration before `run` sees them; a
 * wrong count or a malformed argument is the one-line usage error, and `run` never starts.
 */
export function defineAction<A extends readonly ArgDecl[]>(
  decl: ActionDecl<A>,
  run: (ctx: ActionContext, args: ParsedArgs<A>) => Promise<ActionResult>,
): ActionHandler {
  return declareAction(decl, (ctx) => run(ctx, parseActionArgs(decl.signature, ctx.args)));
}

/**
 * A handler that takes its declaration as documentation only and parses (parseActionArgs) where it
 * chooses: an action that must succeed whatever oned sends (post_backup, the no-ops).
 */
export function declareAction<A extends readonly ArgDecl[]>(
  decl: ActionDecl<A>,
  run: (ctx: ActionContext) => Promise<ActionResult>,
): ActionHandler {
  return Object.assign((ctx: ActionContext) => run(ctx), { signature: decl.signature, does: decl.does });
}
