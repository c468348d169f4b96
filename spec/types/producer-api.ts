/**
 * Type-level contract of the generated producer methods. Compiled by
 * spec/unit/producer-types.spec.ts (and by `npm run typecheck`): every valid call must compile
 * and every `@ts-expect-error` line must really be an error.
 */
import {
  Exchange,
  GenericProducer,
  MessageCommand,
  MessageStatus,
  RpcCommand,
  type RpcResult,
} from '../../lib';

class EchoExchange extends Exchange {
  static override name = 'echo-exchange';
}

class ApiProducer extends GenericProducer<{ echo: string; add: [number, number]; ping: void }> {
  static override eks = [[EchoExchange, 'echo-rk']] as const;
  build_message_status_online() {
    return new MessageStatus('online');
  }
  build_message_log(level: 'info' | 'warn', text: string) {
    return new MessageCommand('log', { level, text });
  }
  build_rpc_sum(a: number, b: number) {
    return new RpcCommand('sum', { a, b });
  }
}

export async function contract(): Promise<void> {
  const producer = ApiProducer.create({ url: 'amqp://localhost' });

  // Builders: names and arguments come from build_message_X / build_rpc_X.
  const sent: Promise<void> = producer.message_status_online();
  await sent;
  await producer.message_status_online({ _key: 'status' });
  await producer.message_log('info', 'hello');
  await producer.message_log('warn', 'hello', { _eks: [[EchoExchange, 'other']] });
  const result: RpcResult = await producer.rpc_sum(1, 2);
  const retried: RpcResult = await producer.rpc_sum(1, 2, { _timeout: 5, _max_retry: 1 });
  const queue: string = await producer.rpc_sum(1, 2, { _queue_only: true });
  void [result, retried, queue];

  // Builder-less commands from the command map.
  await producer.message_echo('text');
  await producer.message_echo('text', { _key: 'k' });
  await producer.message_add(1, 2);
  await producer.message_ping();
  const echoed: RpcResult = await producer.rpc_echo('text', { _timeout: 1 });
  void echoed;

  // @ts-expect-error an unknown message name does not compile
  await producer.message_ecko('text');
  // @ts-expect-error an unknown rpc name does not compile
  await producer.rpc_nope();
  // @ts-expect-error a wrong argument type does not compile
  await producer.message_echo(42);
  // @ts-expect-error a missing argument does not compile
  await producer.message_log('info');
  // @ts-expect-error a builder argument outside its union does not compile
  await producer.message_log('debug', 'x');
  // @ts-expect-error too many arguments do not compile
  await producer.message_status_online('extra');
  // @ts-expect-error rpc arguments are checked too
  await producer.rpc_sum('1', 2);
  // @ts-expect-error tuple parameters are spread: each element is checked
  await producer.message_add(1, 'two');
  // @ts-expect-error an unknown control option does not compile
  await producer.message_echo('text', { _timout: 3 });
  // @ts-expect-error rpc control options are not message options
  await producer.message_echo('text', { _timeout: 3 });
  // @ts-expect-error a queue-only call resolves to the queue name, not a result
  const notAResult: RpcResult = await producer.rpc_sum(1, 2, { _queue_only: true });
  void notAResult;

  await producer.close();
}
