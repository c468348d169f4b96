/**
 * Declarative exchanges: subclass {@link Exchange} and set its static fields, as in postage.
 */

/** AMQP exchange types; any other string (e.g. `x-delayed-message`) is accepted too. */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers' | (string & {});

/** The declaration parameters of an exchange, with postage's key names. */
export interface ExchangeParameters {
  exchange: string;
  exchange_type: ExchangeType;
  passive: boolean;
  durable: boolean;
  auto_delete: boolean;
  internal: boolean;
  arguments: Readonly<Record<string, unknown>>;
}

/**
 * What postage needs of an exchange: an {@link Exchange} subclass, or any object with these
 * fields (so exchanges can also be built at runtime).
 */
export interface ExchangeDefinition {
  readonly name: string;
  readonly exchange_type: ExchangeType;
  readonly passive: boolean;
  readonly durable: boolean;
  readonly auto_delete: boolean;
  readonly internal?: boolean;
  readonly arguments?: Readonly<Record<string, unknown>>;
}

/**
 * The base of declarative exchanges. Set the static fields in a subclass; postage declares the
 * exchange once per connection, before its first use.
 *
 * `name` is a static field, as in postage; this needs `target` ES2022 or later (or
 * `useDefineForClassFields`), the default of modern TypeScript setups, and it replaces the
 * class's own `Function.name` (`EchoExchange.name` is `'echo-exchange'`). Where either does
 * not suit, {@link Exchange.define} makes an exchange without a class.
 *
 * @example
 * ```ts
 * class EchoExchange extends Exchange {
 *   static override name = 'echo-exchange';
 *   static override exchange_type = 'direct';
 * }
 * EchoExchange.parameters; // { exchange: 'echo-exchange', exchange_type: 'direct', passive: false, durable: true, ... }
 * ```
 */
export class Exchange {
  /** The exchange name. */
  static name = 'noname';
  /** `direct`, `fanout`, `topic`, `headers` or a plugin type. @default 'direct' */
  static exchange_type: ExchangeType = 'direct';
  /** Only check that the exchange exists (a 404 if it does not). @default false */
  static passive = false;
  /** Survives a broker restart; messages to a durable exchange are published persistent. @default true */
  static durable = true;
  /** Deleted when its last binding goes. @default false */
  static auto_delete = false;
  /** Cannot be published to directly, only through exchange-to-exchange bindings. @default false */
  static internal = false;
  /** Extra declaration arguments, e.g. `{ 'alternate-exchange': 'ae' }`. @default {} */
  static arguments: Readonly<Record<string, unknown>> = {};

  /**
   * The declaration parameters, computed when read (postage froze them when the class was
   * created, so later changes were ignored).
   */
  static get parameters(): ExchangeParameters {
    return exchangeParameters(this);
  }

  /**
   * An exchange as a plain definition: the fields given, the others from this class's static
   * fields (`Exchange`'s defaults, or a subclass's). It sets no `Function.name` and needs no
   * compiler setting, so it suits `useDefineForClassFields: false` (e.g. NestJS's
   * `target` ES2021).
   *
   * @example
   * ```ts
   * export const EchoExchange = Exchange.define({ name: 'echo-exchange', exchange_type: 'direct' });
   * class EchoProducer extends GenericProducer<{ echo: string }> {
   *   static override eks = [[EchoExchange, 'echo-rk']] as const;
   * }
   * ```
   */
  static define(fields: ExchangeFields): Readonly<Required<ExchangeDefinition>> {
    return Object.freeze({
      name: fields.name,
      exchange_type: fields.exchange_type ?? this.exchange_type,
      passive: fields.passive ?? this.passive,
      durable: fields.durable ?? this.durable,
      auto_delete: fields.auto_delete ?? this.auto_delete,
      internal: fields.internal ?? this.internal,
      arguments: fields.arguments ?? this.arguments,
    });
  }
}

/** The fields of {@link Exchange.define}: a name, and any of the other fields of an exchange. */
export type ExchangeFields = Pick<ExchangeDefinition, 'name'> &
  Partial<Omit<{ -readonly [K in keyof ExchangeDefinition]-?: ExchangeDefinition[K] }, 'name'>>;

/** The parameters view of any exchange definition. */
export function exchangeParameters(exchange: ExchangeDefinition): ExchangeParameters {
  return {
    exchange: exchange.name,
    exchange_type: exchange.exchange_type,
    passive: exchange.passive,
    durable: exchange.durable,
    auto_delete: exchange.auto_delete,
    internal: exchange.internal ?? false,
    arguments: exchange.arguments ?? {},
  };
}

/**
 * A string that identifies a declaration, so one exchange name declared with two different
 * parameter sets is declared twice (and the broker reports the conflict).
 * @internal
 */
export function exchangeKey(exchange: ExchangeDefinition): string {
  const p = exchangeParameters(exchange);
  return JSON.stringify([
    p.exchange,
    p.exchange_type,
    p.passive,
    p.durable,
    p.auto_delete,
    p.internal,
    p.arguments,
  ]);
}

/** An (exchange, routing key) pair: postage's "EK". */
export type ExchangeKey = readonly [exchange: ExchangeDefinition, key: string];
