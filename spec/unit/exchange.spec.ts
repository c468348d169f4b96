import { Exchange, exchangeParameters } from '../../lib';

describe('exchange', () => {
  it("exchange - defaults are postage's (noname, direct, not passive, durable, not auto-delete)", () => {
    expect(Exchange.parameters).toEqual({
      exchange: 'noname',
      exchange_type: 'direct',
      passive: false,
      durable: true,
      auto_delete: false,
      internal: false,
      arguments: {},
    });
  });

  it('exchange - a subclass declares its parameters; internal and arguments are supported', () => {
    class LogExchange extends Exchange {
      static override name = 'logging-exchange';
      static override exchange_type = 'topic';
      static override durable = false;
      static override internal = true;
      static override arguments = { 'alternate-exchange': 'ae' };
    }
    expect(LogExchange.parameters).toEqual({
      exchange: 'logging-exchange',
      exchange_type: 'topic',
      passive: false,
      durable: false,
      auto_delete: false,
      internal: true,
      arguments: { 'alternate-exchange': 'ae' },
    });
    expect(Exchange.parameters.exchange).toBe('noname');
  });

  it('exchange - the parameters view is computed when read (postage froze it at class creation)', () => {
    class Mutable extends Exchange {
      static override name = 'm';
    }
    Mutable.durable = false;
    expect(Mutable.parameters.durable).toBe(false);
  });

  it('exchange - plain objects are exchange definitions too', () => {
    expect(
      exchangeParameters({
        name: 'x',
        exchange_type: 'fanout',
        passive: true,
        durable: false,
        auto_delete: true,
      }),
    ).toEqual({
      exchange: 'x',
      exchange_type: 'fanout',
      passive: true,
      durable: false,
      auto_delete: true,
      internal: false,
      arguments: {},
    });
  });

  it("exchange - Exchange.define makes a definition with the given fields and the class's defaults, no class name involved", () => {
    const echo = Exchange.define({ name: 'echo-exchange', exchange_type: 'fanout' });
    expect(exchangeParameters(echo)).toEqual({
      exchange: 'echo-exchange',
      exchange_type: 'fanout',
      passive: false,
      durable: true,
      auto_delete: false,
      internal: false,
      arguments: {},
    });
    expect(Object.isFrozen(echo)).toBe(true);
    class Transient extends Exchange {
      static override durable = false;
    }
    expect(Transient.define({ name: 't', arguments: { 'alternate-exchange': 'ae' } })).toMatchObject({
      name: 't',
      durable: false,
      arguments: { 'alternate-exchange': 'ae' },
    });
  });
});
