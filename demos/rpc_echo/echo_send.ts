/**
 * rpc_echo sender: calls `echo` and prints the reply's value, or "RPC failed" (a timeout after
 * the retries, an error or an exception). --quit stops the receiver; --timeout <seconds> sets the
 * wait per attempt (default 5, one retry).
 *
 * To call Python postage's rpc_echo/echo_receive.py, run it with POSTAGE_RPC_REPLY_MODE=per-call:
 * Python postage replies without a correlation id, which direct reply-to (the default) cannot
 * match (the producer warns so).
 */
import { Fingerprint, GenericProducer } from 'postage-amqp';
import { EchoExchange } from './echo_shared';

class EchoProducer extends GenericProducer<{ echo: string; quit: void }> {
  static override eks = [[EchoExchange, 'echo-rk']] as const;
}

async function main(): Promise<void> {
  const producer = EchoProducer.create({ fingerprint: new Fingerprint('echo_send', 'application') });
  try {
    if (process.argv.includes('--quit')) {
      await producer.message_quit();
      console.log('[sender] quit sent');
      return;
    }
    const flag = process.argv.indexOf('--timeout');
    const timeout = flag >= 0 ? Number(process.argv[flag + 1]) : 5;
    const reply = await producer.rpc_echo('RPC test message', { _timeout: timeout, _max_retry: 1 });
    if (reply.ok) console.log(reply.value);
    else console.log('RPC failed');
  } finally {
    await producer.close();
  }
}

main().catch((err: unknown) => {
  console.error('[sender] failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
