import type { MemoryQueue } from './queue';

/** Exchange types the in-process broker routes, as RabbitMQ's built-in ones. */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

export const EXCHANGE_TYPES: ReadonlySet<string> = new Set(['direct', 'fanout', 'topic', 'headers']);

/** A binding from an exchange to a queue or another exchange. */
export interface Binding {
  readonly destination: MemoryQueue | MemoryExchange;
  readonly key: string;
  readonly args: Readonly<Record<string, unknown>>;
  /** Pre-compiled matcher for topic and headers exchanges. */
  readonly matches: (routingKey: string, headers: Record<string, unknown> | undefined) => boolean;
  /** `[destination]` when it is a queue, made once: the route of a message that follows only this binding. */
  alone?: readonly MemoryQueue[];
}

/**
 * An exchange and its bindings, with an index per type so that publishing does not scan every
 * binding: a map by key for direct, a per-key cache for topic.
 * Not exported by the package (its declaration ships: the memory transport's declarations name it).
 */
export class MemoryExchange {
  readonly bindings: Binding[] = [];
  private readonly byKey = new Map<string, Binding[]>();
  private readonly topicCache = new Map<string, Binding[]>();
  private hadBinding = false;

  constructor(
    readonly name: string,
    readonly type: ExchangeType,
    readonly durable: boolean,
    readonly autoDelete: boolean,
    readonly internal: boolean,
    readonly args: Readonly<Record<string, unknown>>,
  ) {}

  get alternate(): string | undefined {
    const value = this.args['alternate-exchange'];
    return typeof value === 'string' ? value : undefined;
  }

  /** Adds a binding; a duplicate (same destination, key and arguments) is ignored. */
  bind(destination: MemoryQueue | MemoryExchange, key: string, args: Record<string, unknown>): void {
    if (this.find(destination, key, args) !== -1) return;
    const binding: Binding = { destination, key, args, matches: this.matcher(key, args) };
    this.bindings.push(binding);
    this.hadBinding = true;
    if (this.type === 'direct') {
      const list = this.byKey.get(key);
      if (list === undefined) this.byKey.set(key, [binding]);
      else list.push(binding);
    }
    this.topicCache.clear();
  }

  /** Removes a binding; returns whether the exchange should now auto-delete. */
  unbind(destination: MemoryQueue | MemoryExchange, key: string, args: Record<string, unknown>): boolean {
    const at = this.find(destination, key, args);
    if (at !== -1) this.removeAt(at);
    return this.autoDeleteDue();
  }

  /** Removes every binding to a destination (it was deleted); returns whether to auto-delete. */
  unbindAll(destination: MemoryQueue | MemoryExchange): boolean {
    let removed = false;
    for (let i = this.bindings.length - 1; i >= 0; i--) {
      if (this.bindings[i]?.destination === destination) {
        this.removeAt(i);
        removed = true;
      }
    }
    return removed && this.autoDeleteDue();
  }

  /** The bindings a message with this key and these headers follows. */
  route(routingKey: string, headers: Record<string, unknown> | undefined): readonly Binding[] {
    switch (this.type) {
      case 'direct':
        return this.byKey.get(routingKey) ?? NONE;
      case 'fanout':
        return this.bindings;
      case 'topic': {
        let hit = this.topicCache.get(routingKey);
        if (hit === undefined) {
          hit = this.bindings.filter((b) => b.matches(routingKey, headers));
          if (this.topicCache.size >= 10_000) this.topicCache.clear();
          this.topicCache.set(routingKey, hit);
        }
        return hit;
      }
      case 'headers':
        return this.bindings.filter((b) => b.matches(routingKey, headers));
    }
  }

  private autoDeleteDue(): boolean {
    return this.autoDelete && this.hadBinding && this.bindings.length === 0;
  }

  private removeAt(at: number): void {
    const [binding] = this.bindings.splice(at, 1);
    if (binding !== undefined && this.type === 'direct') {
      const list = this.byKey.get(binding.key) ?? [];
      const rest = list.filter((b) => b !== binding);
      if (rest.length === 0) this.byKey.delete(binding.key);
      else this.byKey.set(binding.key, rest);
    }
    this.topicCache.clear();
  }

  private find(
    destination: MemoryQueue | MemoryExchange,
    key: string,
    args: Record<string, unknown>,
  ): number {
    return this.bindings.findIndex(
      (b) => b.destination === destination && b.key === key && sameTable(b.args, args),
    );
  }

  private matcher(key: string, args: Record<string, unknown>): Binding['matches'] {
    switch (this.type) {
      case 'topic': {
        const pattern = key.split('.');
        return (routingKey) => topicMatches(pattern, 0, routingKey.split('.'), 0);
      }
      case 'headers':
        return (_routingKey, headers) => headersMatch(args, headers);
      default:
        return () => true;
    }
  }
}

const NONE: readonly Binding[] = [];

/** AMQP topic matching: `*` is exactly one word, `#` zero or more. */
export function topicMatches(pattern: string[], p: number, words: string[], w: number): boolean {
  for (;;) {
    if (p === pattern.length) return w === words.length;
    const part = pattern[p];
    if (part === '#') {
      // Collapse runs of '#', then try every split point.
      while (pattern[p + 1] === '#') p++;
      if (p + 1 === pattern.length) return true;
      for (let i = w; i <= words.length; i++) if (topicMatches(pattern, p + 1, words, i)) return true;
      return false;
    }
    if (w === words.length) return false;
    if (part !== '*' && part !== words[w]) return false;
    p++;
    w++;
  }
}

/** The headers exchange: x-match all (default) or any; `-with-x` variants also compare x- keys. */
export function headersMatch(
  args: Readonly<Record<string, unknown>>,
  headers: Record<string, unknown> | undefined,
): boolean {
  const mode = typeof args['x-match'] === 'string' ? args['x-match'] : 'all';
  const withX = mode.endsWith('-with-x');
  const any = mode.startsWith('any');
  let compared = 0;
  for (const [name, expected] of Object.entries(args)) {
    if (name.startsWith('x-') && (!withX || name === 'x-match')) continue;
    compared++;
    const present = headers !== undefined && Object.prototype.hasOwnProperty.call(headers, name);
    const equal = present && (expected === undefined || sameValue(expected, headers[name]));
    if (any && equal) return true;
    if (!any && !equal) return false;
  }
  return any ? false : compared >= 0;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Whether two argument tables hold the same entries. */
export function sameTable(
  a: Readonly<Record<string, unknown>>,
  b: Readonly<Record<string, unknown>>,
): boolean {
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue(a[k], b[k]));
}
