/** `postage rpc EXCHANGE KEY NAME [JSON]`: an RPC call, printing the result's value. */
import { RpcCommand, type RpcResult } from '../..';
import {
  Exit,
  flag,
  integerOption,
  jsonArgument,
  type CliContext,
  type Command,
  type ParsedArgs,
} from '../command';
import { producer, target } from './shared';

/** Seconds an RPC attempt waits for its reply unless --timeout says otherwise. */
const DEFAULT_TIMEOUT_SECONDS = 30;

async function run(context: CliContext, args: ParsedArgs): Promise<number> {
  const [exchange, key, name, json] = args.positionals as [string, string, string, string?];
  const parameters = jsonArgument(json, 'the parameters');
  const retries = integerOption(args, 'retries', 0);
  const caller = producer(context, flag(args, 'per-call') ? { rpcReplyMode: 'per-call' } : {});
  let result: RpcResult;
  try {
    const reply = await caller.call(new RpcCommand(name, parameters ?? {}), {
      _eks: [target(exchange, key)],
      _timeout: (context.timeoutMs ?? DEFAULT_TIMEOUT_SECONDS * 1000) / 1000,
      _max_retry: retries,
    });
    result = reply as RpcResult;
  } finally {
    await caller.close();
  }
  return print(context, result);
}

function print(context: CliContext, result: RpcResult): number {
  context.document({
    type: result.resultType,
    value: result.value,
    message: result.message,
    ...(result.error === undefined ? {} : { code: result.error.code }),
    fingerprint: result.body.fingerprint,
  });
  if (result.ok) {
    context.line(typeof result.value === 'string' ? result.value : JSON.stringify(result.value));
    return Exit.ok;
  }
  try {
    result.unwrap();
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'RPC_ERROR';
    context.warn(`postage rpc: ${code}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return Exit.failure;
}

/** The `rpc` command. */
export const rpc: Command = {
  name: 'rpc',
  summary: "call a component's RPC handler and print the result's value",
  usage: 'EXCHANGE KEY NAME [JSON]',
  details: [
    "JSON is the call's parameters (default {}). Prints the value of a success (--json: the",
    'whole result). An error or exception result, an unroutable request and a timeout are',
    'exit 1 with the message on standard error. --timeout is per attempt (default 30 s).',
    'Use --per-call for Python postage servers (they reply without a correlation id).',
  ],
  options: {
    'per-call': { type: 'boolean', help: 'a private reply queue for the call, not direct reply-to' },
    retries: { type: 'string', value: 'N', help: 'attempts after the first one times out (default 0)' },
  },
  positionals: { min: 3, max: 4 },
  run,
};
