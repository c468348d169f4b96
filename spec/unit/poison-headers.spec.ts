/**
 * The dead-letter history on postage's copies (counted requeues, dead letters) and the delivery
 * count it reads back, as pure logic. The broker's own headers never travel on a copy: RabbitMQ
 * 3.13+ ignores an x-death a client publishes, so the history goes to x-postage-deaths.
 */
import {
  DEATHS_HEADER,
  DELIVERIES_HEADER,
  deadLetterProperties,
  deliveryNumber,
  requeueProperties,
} from '../../lib/processor/poison';
import type { MessageProperties, TransportMessage } from '../../lib/transport/types';

const death = (queue: string, reason: string, count: number) => ({
  count,
  reason,
  queue,
  exchange: '',
  'routing-keys': [queue],
  time: { '!': 'timestamp', value: 1_700_000_000 },
});

function message(headers: Record<string, unknown>): TransportMessage {
  const properties: MessageProperties = { headers, messageId: 'm-1' };
  return {
    content: Buffer.from('{}'),
    fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q' },
    properties,
  };
}

const BROKER = /^x-(death|first-death-|last-death-|delivery-count)/;

describe('poison headers', () => {
  test("poison headers - a copy leaves out the broker's dead-letter headers and keeps its x-death history in x-postage-deaths", () => {
    const original = message({
      'x-death': [death('work', 'rejected', 1)],
      'x-first-death-reason': 'rejected',
      'x-first-death-queue': 'work',
      'x-first-death-exchange': '',
      'x-last-death-reason': 'rejected',
      'x-last-death-queue': 'work',
      'x-last-death-exchange': '',
      'x-delivery-count': 3,
      tenant: 'a',
    });
    for (const copy of [
      requeueProperties(original, 2),
      deadLetterProperties(original, 'q', 'R', undefined, 2),
    ]) {
      const headers = copy.headers ?? {};
      expect(Object.keys(headers).filter((key) => BROKER.test(key))).toEqual([]);
      expect(headers[DEATHS_HEADER]).toEqual([death('work', 'rejected', 1)]);
      expect(headers).toMatchObject({ tenant: 'a', [DELIVERIES_HEADER]: 2 });
    }
    expect(requeueProperties(message({ tenant: 'a' }), 1).headers?.[DEATHS_HEADER]).toBeUndefined();
  });

  test('poison headers - x-postage-deaths puts the newer deaths first and adds up the counts of one queue and reason', () => {
    const copy = requeueProperties(
      message({
        'x-death': [death('retry', 'expired', 1), death('work', 'rejected', 1)],
        [DEATHS_HEADER]: [death('work', 'rejected', 2), death('other', 'maxlen', 1)],
      }),
      1,
    );
    expect(copy.headers?.[DEATHS_HEADER]).toEqual([
      death('retry', 'expired', 1),
      death('work', 'rejected', 3),
      death('other', 'maxlen', 1),
    ]);
    // Without a new x-death the history travels unchanged.
    const again = requeueProperties(message({ [DEATHS_HEADER]: [death('work', 'rejected', 2)] }), 1);
    expect(again.headers?.[DEATHS_HEADER]).toEqual([death('work', 'rejected', 2)]);
  });

  test("poison headers - the delivery number adds postage's count of earlier copies and the quorum queue's returns of this one", () => {
    expect(deliveryNumber({})).toBe(1);
    expect(deliveryNumber({ headers: {} })).toBe(1);
    // RabbitMQ 3.10 sets x-delivery-count 0 on a quorum queue's first delivery; 4.0 leaves it out.
    expect(deliveryNumber({ headers: { 'x-delivery-count': 0 } }, true)).toBe(1);
    expect(deliveryNumber({ headers: { 'x-delivery-count': 2 } }, true)).toBe(3);
    expect(deliveryNumber({ headers: { [DELIVERIES_HEADER]: 4 } })).toBe(5);
    expect(deliveryNumber({ headers: { [DELIVERIES_HEADER]: 4, 'x-delivery-count': 0 } }, true)).toBe(5);
    expect(deliveryNumber({ headers: { [DELIVERIES_HEADER]: 4, 'x-delivery-count': 1 } }, true)).toBe(6);
  });
});
