/** Every `postage` command, in the order `postage --help` lists them. */
import type { Command } from '../command';
import { config } from './config';
import { rpc } from './rpc';
import { send } from './send';

/** The commands of `postage`; each command is one module of this folder. */
export const commands: readonly Command[] = [send, rpc, config];
