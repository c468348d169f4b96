/**
 * The Proxy that turns `message_X(...)` and `rpc_X(...)` into sends, and the types that derive
 * those methods from `build_message_X` / `build_rpc_X` builders and from the producer's
 * command map. This is the only file with casts and `any`.
 */
import type { RpcResult } from '../messages/message';
import type { RpcOptions, SendOptions } from './producer';

/** Control options of an RPC call that returns the reply queue instead of the result. */
export type QueueOnlyOptions = RpcOptions & { _queue_only: true };

/** `message_X(...args, options?)`: resolves when the broker confirmed every publish. */
export type MessageMethod<A extends readonly unknown[]> = (
  ...args: [...A] | [...A, SendOptions]
) => Promise<void>;

/** `rpc_X(...args, options?)`: resolves to the result (or, with `_queue_only`, to the reply queue). */
export interface RpcMethod<A extends readonly unknown[]> {
  (...args: [...A, QueueOnlyOptions]): Promise<string>;
  (...args: [...A] | [...A, RpcOptions & { _queue_only?: false }]): Promise<RpcResult>;
}

// `any` is needed to match every function signature in conditional types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ArgsOf<F> = F extends (...args: infer A) => any ? A : never;

/** The methods derived from the builders of producer type `T`. */
export type BuilderMethods<T> = {
  [K in keyof T as K extends `build_message_${infer N}` ? `message_${N}` : never]: MessageMethod<
    ArgsOf<T[K]>
  >;
} & {
  [K in keyof T as K extends `build_rpc_${infer N}` ? `rpc_${N}` : never]: RpcMethod<ArgsOf<T[K]>>;
};

/**
 * The arguments of a builder-less command with parameters `P`: none for `void`, the elements
 * of a tuple of two or more (sent as the array of them), otherwise the one value.
 */
export type CommandArgs<P> = [P] extends [void]
  ? []
  : P extends readonly [unknown, unknown, ...unknown[]]
    ? [...P]
    : [P];

/** The methods of the builder-less commands of map `C` (command name to parameters type). */
export type CommandMethods<C> = {
  [N in keyof C & string as `message_${N}`]: MessageMethod<CommandArgs<C[N]>>;
} & {
  [N in keyof C & string as `rpc_${N}`]: RpcMethod<CommandArgs<C[N]>>;
};

/** Marks the command map of a producer type, for {@link Produced}. */
export declare const COMMANDS: unique symbol;

/** The command map of a producer that declares none. */
export type NoCommands = Record<never, never>;

/** The command map of producer type `T`. */
export type CommandsOf<T> = T extends { readonly [COMMANDS]?: infer C }
  ? unknown extends C
    ? NoCommands
    : C
  : NoCommands;

/** A producer with its generated `message_*` and `rpc_*` methods. */
export type Produced<T> = T & BuilderMethods<T> & CommandMethods<CommandsOf<T>>;

/**
 * Wraps a producer so that `message_X` / `rpc_X` resolve to generated methods. Symbols, real
 * members (including `then` and `toJSON` when defined) pass through; any other name is
 * undefined, so `await producer` does not hang and `JSON.stringify(producer)` works.
 * @internal
 */
export function wrapProducer<T extends object>(target: T, dynamic: (name: string) => unknown): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (typeof prop === 'symbol' || prop in t) return Reflect.get(t, prop, receiver);
      return dynamic(prop);
    },
  });
}

/** Types an instance as {@link Produced}; the Proxy made it one at construction. @internal */
export function asProduced<T>(producer: T): Produced<T> {
  return producer as Produced<T>;
}
