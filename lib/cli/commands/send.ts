/** `postage send EXCHANGE KEY NAME [JSON]`: a command message, confirmed by the broker. */
import { MessageCommand } from '../..';
import { Exit, jsonArgument, type CliContext, type Command, type ParsedArgs } from '../command';
import { producer, target } from './shared';

async function run(context: CliContext, args: ParsedArgs): Promise<number> {
  const [exchange, key, name, json] = args.positionals as [string, string, string, string?];
  const parameters = jsonArgument(json, 'the parameters');
  const message = new MessageCommand(name, parameters ?? {});
  const sender = producer(context);
  try {
    await sender.send(message, { _eks: [target(exchange, key)] });
  } finally {
    await sender.close();
  }
  context.line(`sent ${name} to ${exchange === '' ? "''" : exchange} with key ${key}`);
  context.document({ sent: true, exchange, key, name, parameters: parameters ?? {} });
  return Exit.ok;
}

/** The `send` command. */
export const send: Command = {
  name: 'send',
  summary: 'send a command message and wait for the broker to confirm it',
  usage: 'EXCHANGE KEY NAME [JSON]',
  details: [
    "JSON is the command's parameters (default {}). The message is mandatory: if no queue is",
    'bound for KEY the broker returns it and the command fails (UNROUTABLE, exit 1). The',
    "exchange must exist (it is checked, never declared); '' is the default exchange.",
  ],
  positionals: { min: 3, max: 4 },
  run,
};
