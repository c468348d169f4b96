/**
 * The headers postage writes on its copies (counted requeues, dead letters) and the delivery
 * count it reads back: pure functions, no broker.
 */
import { DEATHS_HEADER, DELIVERIES_HEADER, copiedHeaders, deliveryNumber } from '../../lib/poison';

const death = (queue: string, reason: string, count: number) => ({
  count,
  reason,
  queue,
  exchange: '',
  'routing-keys': [queue],
  time: { '!': 'timestamp', value: 1_700_000_000 },
});

describe('poison headers', () => {
  test("poison headers - a copy leaves out the broker's headers and keeps its x-death history in x-postage-deaths", () => {
    const copy = copiedHeaders({
      'x-death': [death('work', 'rejected', 1)],
      'x-first-death-reason': 'rejected',
      'x-first-death-queue': 'work',
      'x-first-death-exchange': '',
      'x-last-death-reason': 'rejected',
      'x-last-death-queue': 'work',
      'x-last-death-exchange': '',
      'x-delivery-count': 3,
      'x-postage-deliveries': 2,
      tenant: 'a',
    });
    expect(copy).toEqual({
      [DEATHS_HEADER]: [death('work', 'rejected', 1)],
      [DELIVERIES_HEADER]: 2,
      tenant: 'a',
    });
    expect(copiedHeaders(undefined)).toEqual({});
    expect(copiedHeaders({ tenant: 'a' })).toEqual({ tenant: 'a' });
  });

  test('poison headers - x-postage-deaths puts the newer deaths first and adds up the counts of one queue and reason', () => {
    const copy = copiedHeaders({
      'x-death': [death('retry', 'expired', 1), death('work', 'rejected', 1)],
      [DEATHS_HEADER]: [death('work', 'rejected', 2), death('other', 'maxlen', 1)],
    });
    expect(copy[DEATHS_HEADER]).toEqual([
      death('retry', 'expired', 1),
      death('work', 'rejected', 3),
      death('other', 'maxlen', 1),
    ]);
    // Without a new x-death the history travels unchanged.
    expect(copiedHeaders({ [DEATHS_HEADER]: [death('work', 'rejected', 2)] })).toEqual({
      [DEATHS_HEADER]: [death('work', 'rejected', 2)],
    });
  });

  test("poison headers - the delivery number adds postage's count of earlier copies and the quorum queue's returns of this one", () => {
    expect(deliveryNumber({})).toBe(1);
    expect(deliveryNumber({ headers: {} })).toBe(1);
    // RabbitMQ 3.10 sets x-delivery-count 0 on a quorum queue's first delivery; 4.0 leaves it out.
    expect(deliveryNumber({ headers: { 'x-delivery-count': 0 } })).toBe(1);
    expect(deliveryNumber({ headers: { 'x-delivery-count': 2 } })).toBe(3);
    expect(deliveryNumber({ headers: { [DELIVERIES_HEADER]: 4 } })).toBe(5);
    expect(deliveryNumber({ headers: { [DELIVERIES_HEADER]: 4, 'x-delivery-count': 0 } })).toBe(5);
    expect(deliveryNumber({ headers: { [DELIVERIES_HEADER]: 4, 'x-delivery-count': 1 } })).toBe(6);
  });
});
