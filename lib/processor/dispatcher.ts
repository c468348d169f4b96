/**
 * The dispatch of one delivery: decode (or translate), the hooks, the handlers (keyed and
 * matchers), the error handlers, then the settlement (ack, counted requeue, dead-letter with
 * the reason). A processor owns one; it never throws and never closes the channel.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import type { GenericConsumer } from '../connection/consumer';
import type { Encoder } from '../messages/encoder';
import {
  DeleteMessage,
  ErrorCode,
  FilterError,
  PostageError,
  RejectMessage,
  ValidationError,
  toPostageError,
} from '../errors';
import type { MessagePredicate, ReplyFunction } from './handlers';
import { HookChain } from './hooks';
import type { Logger } from '../logger';
import { MessageResultError, MessageResultException } from '../messages/message';
import {
  DEFAULT_REQUEUE_DELAY_MS,
  Outcome,
  isOutcome,
  strongest,
  withError,
  type ErrorHandler,
} from './outcome';
import {
  FailedCopies,
  ROUTING_KEY_HEADER,
  brokerCountsRequeues,
  copyRefusal,
  deadLetterProperties,
  deliveryNumber,
  requeueProperties,
  type QueueRules,
} from './poison';
import type { MessageProcessor } from './processor';
import { DeliveryContext, InvalidContent, RouteTable, prepare, sendReply, type Route } from './routes';
import { Category, assertEnvelope, type ReceivedBody } from '../messages/schema';
import { translate, type MessageTranslator } from './translator';
import type { PublishOptions, TransportMessage } from '../transport/types';

/** What a dispatcher works with (the processor's parts and settings). @internal */
export interface DispatchSettings {
  readonly processor: MessageProcessor;
  readonly consumer: GenericConsumer;
  readonly encoder: Encoder;
  readonly logger: Logger;
  readonly fingerprint: Readonly<Record<string, string>>;
  readonly debug: boolean;
  readonly translators: Readonly<Record<string, MessageTranslator>>;
  readonly queueRules: ReadonlyMap<string, QueueRules>;
  readonly onError: ErrorHandler | undefined;
  /** What an RPC no handler takes gets; undefined: derived from whether the processor serves RPCs. */
  readonly unknownRpc: UnknownRpc | undefined;
  readonly maxDeliveries: number;
  /** The processor's own dead-letter exchange: dead letters published there carry postage's reason headers. */
  readonly deadLetterExchange: string | undefined;
  /** The processor's broker user: a copy keeps a user_id of this user only (the broker refuses others). */
  readonly user: string | undefined;
  /** Aborted when the processor begins to stop: requeue delays end at once. */
  readonly closing: AbortSignal;
  /** Aborted at the shutdown deadline: the handlers' `context.signal`. */
  readonly deadline: AbortSignal;
  /** Called once per handled delivery, when it is settled (one bound function: no per-message closure). */
  readonly settled: () => void;
  /** Publishes with publisher confirms (dead letters, counted requeues): resolves on the broker's ack. */
  readonly publish: (
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: PublishOptions,
  ) => Promise<void>;
  /** Reports an error on the processor's `error` event (logged when nobody listens). */
  readonly report: (error: PostageError, context: string) => void;
}

/**
 * What a processor does with an RPC that none of its handlers takes: `reply-error` answers
 * `MessageResultError('no handler ...')` at once (the caller fails fast, `NO_HANDLER`);
 * `ignore` acks it without a reply (another processor on the same exchange serves it).
 */
export type UnknownRpc = 'reply-error' | 'ignore';

/** Messages settled, per outcome (mutable: the dispatcher and the processor count). @internal */
export interface Counts {
  received: number;
  acked: number;
  requeued: number;
  deadLettered: number;
  returned: number;
}

const NO_ROUTES: readonly Route[] = [];

/**
 * Codes of a copy that can never be published as it is: retrying changes nothing, so the
 * original is settled without it at once.
 */
const CANNOT_COPY = new Set<ErrorCode>([
  ErrorCode.ENCODE_FAILED,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.INVALID_ARGUMENT,
  // The broker refused the copy's properties (406): the same copy is refused again.
  ErrorCode.PRECONDITION_FAILED,
]);

/** @internal */
export class Dispatcher {
  /** (category, type, name) handlers. */
  readonly routes = new RouteTable();
  /** Predicate handlers, per category. */
  readonly matchers: Record<Category, Route[]> = { message: [], rpc: [] };
  readonly hooks = new HookChain();
  readonly counts: Counts = { received: 0, acked: 0, requeued: 0, deadLettered: 0, returned: 0 };
  readonly #settings: DispatchSettings;
  /** Returns after a failed copy on classic queues, counted toward maxDeliveries. */
  readonly #failedCopies = new FailedCopies();

  constructor(settings: DispatchSettings) {
    this.#settings = settings;
  }

  /** Handles one delivery to the end: decode, translate, hooks, handlers, settle. Never throws. */
  async handle(message: TransportMessage, queue: string): Promise<void> {
    const deliveries =
      deliveryNumber(message.properties, this.#settings.queueRules.get(queue)?.quorum) +
      this.#failedCopies.of(message, queue);
    try {
      let body: ReceivedBody;
      try {
        const decoded: unknown = this.#settings.encoder.decode(message.content);
        const translator = this.#settings.translators[queue];
        if (translator !== undefined) {
          body = translate(translator, decoded, {
            queue,
            fields: message.fields,
            properties: message.properties,
          });
        } else {
          assertEnvelope(decoded);
          body = decoded;
        }
      } catch (err) {
        const waiting = this.#badMessage(message, queue, err, deliveries);
        if (waiting !== undefined) await waiting;
        return;
      }
      if (this.#settings.debug) {
        this.#settings.logger.debug(
          { queue, type: body.type, name: body.name, category: body.category },
          '<-- receive',
        );
      }
      if (deliveries > this.#settings.maxDeliveries) {
        // Redelivered past the bound without postage's requeue (e.g. the process crashed mid-handler).
        if (
          body.category === Category.rpc &&
          (this.#answersUnknownRpc() || this.routes.get(Category.rpc, body.type, body.name) !== undefined)
        ) {
          this.#sendReply(message, new MessageResultError(`rpc dead-lettered: ${ErrorCode.DELIVERY_LIMIT}`));
        }
        const waiting = this.#settle(
          message,
          queue,
          Outcome.deadLetter(ErrorCode.DELIVERY_LIMIT),
          deliveries,
        );
        if (waiting !== undefined) await waiting;
        return;
      }
      const context = new DeliveryContext(
        this.#settings.processor,
        body,
        message,
        queue,
        deliveries,
        this.#settings.deadline,
      );
      let outcome: Outcome = Outcome.ack();
      let error: unknown = undefined;
      let skip = false;
      if (this.hooks.perMessage) {
        for (const hook of this.hooks.beforeHandling) {
          try {
            await hook(context);
          } catch (err) {
            error = hookError('beforeHandling', err);
            outcome = await this.#onHandlerError(error, undefined, context);
            skip = true;
            break;
          }
        }
      }
      if (!skip) {
        const sole = body.category === Category.message ? this.#soleRoute(body) : undefined;
        if (sole !== undefined) {
          // The common case inline: the handler's promise is awaited here, not in another async frame.
          try {
            const data = prepare(sole, sole.fullBody ? body : body.content);
            outcome = this.#returnedOutcome(await sole.invoke(data, undefined, context), sole);
          } catch (err) {
            if (!(err instanceof FilterError)) outcome = await this.#onHandlerError(err, sole, context);
          }
        } else if (body.category === Category.rpc) {
          outcome = await this.#dispatchRpc(message, context);
        } else {
          outcome = await this.#dispatchMessage(context);
        }
      }
      if (this.hooks.perMessage) {
        for (const hook of this.hooks.afterHandling) {
          try {
            await hook(context, { outcome, error });
          } catch (err) {
            outcome = strongest(
              outcome,
              await this.#onHandlerError(hookError('afterHandling', err), undefined, context),
            );
          }
        }
      }
      if (outcome.kind === 'requeue' && outcome.delayMs > 0 && !this.#settings.closing.aborted) {
        // Held, not put back at once: a failing message must not loop hot.
        await sleep(outcome.delayMs, undefined, { signal: this.#settings.closing }).catch(() => undefined);
      }
      const waiting = this.#settle(message, queue, outcome, deliveries);
      if (waiting !== undefined) await waiting;
    } catch (err) {
      // Only a bug in postage gets here; never lose the message silently, never crash.
      this.#settings.logger.error({ err, queue }, 'dispatch failed');
      this.#settings.consumer.reject(message, false);
      this.counts.deadLettered++;
    } finally {
      this.#settings.settled();
    }
  }

  async #dispatchMessage(context: DeliveryContext): Promise<Outcome> {
    const body = context.body;
    const keyed = this.routes.get(Category.message, body.type, body.name) ?? NO_ROUTES;
    let routes = keyed;
    const matchers = this.matchers.message;
    if (matchers.length > 0) {
      const all = [...keyed];
      for (const matcher of matchers) if (this.#matches(matcher, context)) all.push(matcher);
      routes = all;
    }
    if (routes.length === 0) {
      this.#settings.logger.debug(
        { type: body.type, name: body.name, queue: context.queue },
        'no handler for message: acked',
      );
      return Outcome.ack();
    }
    let outcome: Outcome = Outcome.ack();
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i] as Route;
      // Handlers must not see each other's changes: copies for all but the last one.
      const source = route.fullBody ? body : body.content;
      const copy = i < routes.length - 1 ? structuredClone(source) : source;
      try {
        const data = prepare(route, copy);
        outcome = strongest(
          outcome,
          this.#returnedOutcome(await route.invoke(data, undefined, context), route),
        );
      } catch (err) {
        if (err instanceof FilterError) continue;
        outcome = strongest(outcome, await this.#onHandlerError(err, route, context));
      }
    }
    return outcome;
  }

  /** The only handler of a fire-and-forget message when it has exactly one and no matcher runs. */
  #soleRoute(body: ReceivedBody): Route | undefined {
    if (this.matchers.message.length > 0) return undefined;
    const keyed = this.routes.get(Category.message, body.type, body.name);
    return keyed !== undefined && keyed.length === 1 ? keyed[0] : undefined;
  }

  /** What a fire-and-forget handler's return value means: its Outcome, otherwise ack. */
  #returnedOutcome(returned: unknown, route: Route): Outcome {
    if (isOutcome(returned)) return returned;
    if (returned instanceof DeleteMessage) {
      this.#settings.logger.info({ handler: route.label }, 'message deleted by its handler');
    }
    return Outcome.ack();
  }

  async #dispatchRpc(message: TransportMessage, context: DeliveryContext): Promise<Outcome> {
    const body = context.body;
    const label = `${body.type} '${String(body.name)}'`;
    let replied = false;
    const reply: ReplyFunction = (result) => {
      if (replied) {
        this.#settings.logger.warn({ handler: label }, 'second reply to one RPC call ignored');
        return;
      }
      replied = true;
      this.#sendReply(message, result);
    };
    const keyed = this.routes.get(Category.rpc, body.type, body.name);
    let route = keyed?.[keyed.length - 1];
    const matchers = this.matchers.rpc;
    if (matchers.length > 0) {
      const candidates = route === undefined ? [] : [route];
      for (const matcher of matchers) if (this.#matches(matcher, context)) candidates.push(matcher);
      if (candidates.length > 1) {
        reply(
          new MessageResultError(
            `ambiguous rpc ${label}: ${candidates.length} handlers match (${candidates.map((r) => r.label).join(', ')})`,
          ),
        );
        this.#settings.logger.warn(
          { handler: label, matches: candidates.length },
          'ambiguous rpc: answered with an error',
        );
        return Outcome.ack();
      }
      route = candidates[0];
    }
    if (route === undefined) {
      if (!this.#answersUnknownRpc()) {
        // A tap, an audit log: another processor serves this call, and answers it.
        this.#settings.logger.debug(
          { type: body.type, name: body.name, queue: context.queue },
          'rpc with no handler: not answered (unknownRpc ignore)',
        );
        return Outcome.ack();
      }
      const answer = new MessageResultError(`no handler for rpc ${label}`);
      answer.body._reserved = { code: ErrorCode.NO_HANDLER };
      reply(answer);
      this.#settings.logger.debug(
        { type: body.type, name: body.name, queue: context.queue },
        'no handler for rpc: answered with an error',
      );
      return Outcome.ack();
    }
    try {
      const data = prepare(route, route.fullBody ? body : body.content);
      const returned = await route.invoke(data, reply, context);
      if (isOutcome(returned)) return this.#rpcOutcome(returned, reply, replied, label, context);
      if (!replied) {
        reply(
          returned === undefined
            ? new MessageResultError(`the rpc handler for ${label} returned without replying`)
            : returned,
        );
      }
      return Outcome.ack();
    } catch (err) {
      if (err instanceof FilterError) {
        if (!replied) reply(new MessageResultError(`rpc ${label} filtered out: ${err.message}`));
        return Outcome.ack();
      }
      if (err instanceof InvalidContent) {
        // Bad input is the caller's error, not an exception of the handler.
        if (!replied) reply(new MessageResultError(`invalid content for rpc ${label}: ${err.error.message}`));
        this.#settings.logger.warn(
          { handler: label, reason: err.error.message },
          'rpc with invalid content: answered with an error',
        );
        return Outcome.deadLetter(ErrorCode.INVALID_MESSAGE, err.error);
      }
      const error = err instanceof Error ? err : new Error(String(err));
      if (!replied) reply(new MessageResultException(error.name, error.message));
      return this.#onHandlerError(err, route, context);
    }
  }

  /**
   * Whether an RPC that no handler takes is answered with an error (`reply-error`) or left to
   * the processor that serves it (`ignore`). By default a processor answers only if it serves
   * RPCs itself (an RPC handler or matcher), so that a tap bound to `#` never answers for the
   * real server, while a server still fails a typo'd name fast.
   */
  #answersUnknownRpc(): boolean {
    const mode = this.#settings.unknownRpc;
    if (mode !== undefined) return mode === 'reply-error';
    return this.routes.has(Category.rpc) || this.matchers.rpc.length > 0;
  }

  /**
   * An RPC handler returned an Outcome: it settles the request. A reply already sent stands.
   * Otherwise: ack answers a MessageResultError (no value was given), deadLetter answers a
   * MessageResultError naming the reason, and requeue answers nothing now: a later delivery
   * answers (and the caller's retries cover the wait), unless this was the last allowed one.
   */
  #rpcOutcome(
    outcome: Outcome,
    reply: ReplyFunction,
    replied: boolean,
    label: string,
    context: DeliveryContext,
  ): Outcome {
    if (replied) return outcome;
    switch (outcome.kind) {
      case 'ack':
        reply(new MessageResultError(`the rpc handler for ${label} returned Outcome.ack() without replying`));
        return outcome;
      case 'deadLetter':
        reply(new MessageResultError(`rpc ${label} dead-lettered: ${outcome.reason}`));
        return outcome;
      case 'requeue':
        if (context.deliveries >= this.#settings.maxDeliveries) {
          reply(new MessageResultError(`rpc ${label} dead-lettered: ${ErrorCode.DELIVERY_LIMIT}`));
        }
        return outcome;
    }
  }

  #matches(matcher: Route, context: DeliveryContext): boolean {
    try {
      return (matcher.matcher as MessagePredicate)(context.body, context);
    } catch (err) {
      this.#settings.logger.error(
        { handler: matcher.label, err },
        'matcher predicate threw: treated as no match',
      );
      return false;
    }
  }

  /** What a handler's error leads to: its error handler, the processor's, then the default. */
  async #onHandlerError(err: unknown, route: Route | undefined, context: DeliveryContext): Promise<Outcome> {
    const label = route?.label ?? 'hooks';
    if (err instanceof DeleteMessage) {
      this.#settings.logger.info({ handler: label, reason: err.message }, 'message deleted by its handler');
      return Outcome.ack();
    }
    if (err instanceof RejectMessage) {
      this.#settings.logger.info({ handler: label, reason: err.message }, 'message rejected by its handler');
      return Outcome.deadLetter('REJECTED', err);
    }
    if (err instanceof InvalidContent) {
      this.#settings.logger.error(
        { handler: label, reason: err.error.message },
        'invalid content: message dead-lettered',
      );
      return Outcome.deadLetter(ErrorCode.INVALID_MESSAGE, err.error);
    }
    const reason =
      err instanceof PostageError && err.code === ErrorCode.HOOK_FAILED
        ? ErrorCode.HOOK_FAILED
        : ErrorCode.HANDLER_FAILED;
    for (const handler of [route?.onError, this.#settings.onError]) {
      if (handler === undefined) continue;
      try {
        const decided = await handler(err, context.message, context);
        if (decided === true) return Outcome.ack();
        if (decided === false) return Outcome.deadLetter(reason, err);
        if (isOutcome(decided)) return withError(decided, err);
      } catch (failure) {
        this.#settings.logger.error(
          { handler: label, err: failure },
          'error handler threw: next one decides',
        );
      }
    }
    this.#settings.logger.error(
      { handler: label, queue: context.queue, err },
      'handler failed: message dead-lettered',
    );
    return Outcome.deadLetter(reason, err);
  }

  /**
   * Acks, requeues (counted) or dead-letters (with the reason) a message. Returns a promise only
   * when it waits for a publisher confirm (postage's own dead letter, a counted requeue): an ack
   * stays synchronous.
   */
  #settle(
    message: TransportMessage,
    queue: string,
    outcome: Outcome,
    deliveries: number,
  ): Promise<void> | undefined {
    switch (outcome.kind) {
      case 'ack':
        this.#failedCopies.forget(message, queue);
        this.#settings.consumer.ack(message);
        this.counts.acked++;
        return undefined;
      case 'requeue': {
        if (deliveries >= this.#settings.maxDeliveries) {
          this.#settings.logger.warn({ queue, deliveries }, 'delivery limit reached: message dead-lettered');
          return this.#deadLetter(
            message,
            queue,
            ErrorCode.DELIVERY_LIMIT,
            outcome.error ?? `delivered ${deliveries} times`,
            deliveries,
          );
        }
        if (brokerCountsRequeues(this.#settings.queueRules.get(queue), this.#settings.maxDeliveries)) {
          // A quorum queue whose declared limit covers maxDeliveries counts returns itself (x-delivery-count).
          this.#settings.consumer.reject(message, true);
          this.counts.requeued++;
          return undefined;
        }
        // Elsewhere the broker does not count, or its limit could end the message first (RabbitMQ
        // 4.0's default 20): republish with postage's counter, ack the original once confirmed.
        const options = requeueProperties(message, deliveries, this.#settings.user);
        return this.#republish(message, queue, '', queue, options, 'requeue', deliveries);
      }
      case 'deadLetter':
        return this.#deadLetter(message, queue, outcome.reason, outcome.error, deliveries);
    }
  }

  /** True when the queue counts returns itself (a quorum queue): a reject with requeue is counted. */
  #brokerCounts(message: TransportMessage, queue: string): boolean {
    const quorum = this.#settings.queueRules.get(queue)?.quorum;
    if (quorum !== undefined) return quorum;
    return typeof message.properties.headers?.['x-delivery-count'] === 'number';
  }

  #deadLetter(
    message: TransportMessage,
    queue: string,
    reason: string,
    error: unknown,
    deliveries: number,
  ): Promise<void> | undefined {
    const own = this.#settings.deadLetterExchange;
    // Only into the processor's own exchange: a queue's other DLX gets the broker's x-death instead.
    if (own === undefined || this.#settings.queueRules.get(queue)?.deadLetterExchange !== own) {
      // No exchange of ours: the broker dead-letters (x-death reason 'rejected') or drops it.
      this.#failedCopies.forget(message, queue);
      this.#settings.consumer.reject(message, false);
      this.counts.deadLettered++;
      return undefined;
    }
    const options = deadLetterProperties(message, queue, reason, error, deliveries, this.#settings.user);
    const routingKey = options.headers?.[ROUTING_KEY_HEADER] as string;
    return this.#republish(message, queue, own, routingKey, options, 'deadLetter', deliveries);
  }

  /**
   * Publishes a copy (dead letter or counted requeue) with publisher confirms and acks the
   * original only once the broker confirmed the copy. When the copy fails:
   * - it cannot be made at all (too large, not encodable, its properties refused): a dead
   *   letter's original is rejected without requeue, so the queue's own dead-letter exchange
   *   (the processor's) takes it with the broker's x-death; a requeue's original goes back as
   *   it is, counted;
   * - otherwise (nacked, unroutable, not confirmed within `confirmTimeout`, channel lost): the
   *   original is held for the requeue delay (cut short at stop), then goes back to its queue,
   *   counted toward maxDeliveries; a dead letter that fails on the last allowed delivery is
   *   rejected to the broker instead.
   * Nothing is requeued forever, nothing loops hot; failures are reported, a rejection logged.
   */
  async #republish(
    message: TransportMessage,
    queue: string,
    exchange: string,
    routingKey: string,
    options: PublishOptions,
    kind: 'requeue' | 'deadLetter',
    deliveries: number,
  ): Promise<void> {
    const what = kind === 'deadLetter' ? 'dead letter' : 'counted requeue';
    let error = copyRefusal(options);
    if (error === undefined) {
      try {
        await this.#settings.publish(exchange, routingKey, message.content, options);
        this.#failedCopies.forget(message, queue);
        this.#settings.consumer.ack(message);
        if (kind === 'deadLetter') this.counts.deadLettered++;
        else this.counts.requeued++;
        return;
      } catch (err) {
        error = toPostageError(err, ErrorCode.CHANNEL_CLOSED, `${what} of a message from '${queue}'`);
      }
    }
    const permanent = CANNOT_COPY.has(error.code);
    const fields = {
      queue,
      code: error.code,
      reason: error.message,
      messageId: message.properties.messageId,
      deliveries,
    };
    if (kind === 'deadLetter' && (permanent || deliveries >= this.#settings.maxDeliveries)) {
      this.#settings.logger.error(
        fields,
        `${what} cannot be published: the message is rejected to the broker (the queue's dead-letter exchange takes it)`,
      );
      this.#failedCopies.forget(message, queue);
      this.#settings.consumer.reject(message, false);
      this.counts.deadLettered++;
      return;
    }
    if (permanent) {
      this.#settings.logger.warn(
        fields,
        `${what} cannot be published: the message goes back to its queue as it is`,
      );
    } else {
      this.#settings.report(error, `${what} not confirmed: the message goes back to its queue`);
      if (!this.#settings.closing.aborted) {
        await sleep(DEFAULT_REQUEUE_DELAY_MS, undefined, { signal: this.#settings.closing }).catch(
          () => undefined,
        );
      }
    }
    if (!this.#brokerCounts(message, queue)) this.#failedCopies.count(message, queue);
    this.#settings.consumer.reject(message, true);
    this.counts.requeued++;
  }

  #sendReply(request: TransportMessage, result: unknown): void {
    sendReply(
      this.#settings.consumer,
      this.#settings.encoder,
      this.#settings.fingerprint,
      this.#settings.logger,
      this.#settings.debug,
      request,
      result,
    );
  }

  #badMessage(
    message: TransportMessage,
    queue: string,
    err: unknown,
    deliveries: number,
  ): Promise<void> | undefined {
    const error =
      err instanceof PostageError ? err : new ValidationError(ErrorCode.DECODE_FAILED, String(err));
    this.#settings.logger.error(
      {
        queue,
        code: error.code,
        reason: error.message,
        messageId: message.properties.messageId,
        bytes: message.content.length,
      },
      'bad message dead-lettered',
    );
    // A caller waiting on an RPC gets an answer at once instead of a timeout (from a processor
    // that serves RPCs: a tap leaves it to the server).
    if (
      typeof message.properties.replyTo === 'string' &&
      message.properties.replyTo !== '' &&
      this.#answersUnknownRpc()
    ) {
      this.#sendReply(message, new MessageResultError(`invalid message: ${error.message}`));
    }
    return this.#deadLetter(message, queue, error.code, error, deliveries);
  }
}

function hookError(hook: string, err: unknown): PostageError {
  return new PostageError(
    ErrorCode.HOOK_FAILED,
    `${hook} hook failed: ${err instanceof Error ? err.message : String(err)}`,
    {
      cause: err,
    },
  );
}
