/**
 * postage: AMQP (RabbitMQ) network components in TypeScript.
 * The curated public surface: values first, then types.
 */
export { ConsoleLogger, LogLevel, getLogger, messageFirstLogger, setLogger } from './logger';
export {
  DEFAULT_CONFIRM_TIMEOUT,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_HEARTBEAT,
  DEFAULT_PUBLISH_BUFFER,
  DEFAULT_RECONNECT,
  describeEndpoint,
  resolveConnectionConfig,
} from './config';
export { Connection } from './connection';
export { DEFAULT_PREFETCH, GenericConsumer } from './consumer';
export { JsonEncoder, jsonEncoder } from './encoder';
export {
  ChannelError,
  ConnectionError,
  ErrorCode,
  FilterError,
  PostageError,
  PublishError,
  RejectMessage,
  RpcError,
  RpcTimeoutError,
  ValidationError,
} from './errors';
export { Exchange, exchangeParameters } from './exchange';
export { Fingerprint } from './fingerprint';
export { Handler, MessageFilter, MessageHandler, MessageHandlerFullBody, RpcHandler } from './handlers';
export {
  MESSAGE_VERSION,
  Message,
  MessageCommand,
  MessageResult,
  MessageResultError,
  MessageResultException,
  MessageStatus,
  RpcCommand,
  resultFromContent,
} from './message';
export { MessageProcessor } from './processor';
export { DEFAULT_MAX_MESSAGE_SIZE, GenericProducer } from './producer';
export { DIRECT_REPLY_TO } from './rpc';
export { MicroScheduler, runAll } from './scheduler';
export type { RunAllHandle } from './scheduler';
export { MemoryBroker } from './transport/memory';
export { TestClient } from './testing';
export { Category, ResultType, assertEnvelope, compileSchema, isEnvelope } from './schema';

export type {
  ConnectionConfig,
  ConnectionOptions,
  Endpoint,
  PublishBufferOptions,
  ReconnectOptions,
} from './config';
export type { ConnectionEvents, ConnectionStatus } from './connection';
export type {
  ConsumerEvents,
  ConsumerOptions,
  DeliveryHandler,
  Eqk,
  QueueFlags,
  QueueSpec,
} from './consumer';
export type { Encoder } from './encoder';
export type { PostageErrorOptions } from './errors';
export type {
  ExchangeDefinition,
  ExchangeFields,
  ExchangeKey,
  ExchangeParameters,
  ExchangeType,
} from './exchange';
export type { FingerprintDict, FingerprintLike, FingerprintOverrides, FingerprintTuple } from './fingerprint';
export type {
  HandlerContext,
  HandlerDecorator,
  HandlerOptions,
  MessageFilterFunction,
  ReplyFunction,
} from './handlers';
export type { LogFields, LogMethod, Logger, MessageFirstTarget } from './logger';
export type { MessageInit, RpcResult } from './message';
export type {
  HandlerFunction,
  ProcessorEvents,
  ProcessorOptions,
  ProcessorStatus,
  RegisterOptions,
  RunResult,
  StopReason,
} from './processor';
export type { ProducerOptions, RpcOptions, SendOptions } from './producer';
export type {
  BuilderMethods,
  CommandArgs,
  CommandMethods,
  MessageMethod,
  Produced,
  QueueOnlyOptions,
  RpcMethod,
} from './producer-proxy';
export type { RpcReplyMode } from './rpc';
export type {
  BrokerObserver,
  MemoryBrokerOptions,
  ObservedDeath,
  ObservedMessage,
  ObservedPublish,
  ObservedSettle,
  QueueSnapshot,
  RabbitmqVersion,
} from './transport/memory';
export type { DeadLettered, Published, Recorded, SendTarget, Settled, TestClientOptions } from './testing';
export type { MessageBody, ReceivedBody, ResultContent } from './schema';
export type {
  MessageFields,
  MessageProperties,
  PublishOptions,
  Transport,
  TransportChannel,
  TransportConnection,
  TransportMessage,
} from './transport/types';

// Processing features: outcomes, matchers, hooks, translators, shutdown, poison messages.
export { DeleteMessage } from './errors';
export { MessageMatcher, RpcMatcher } from './handlers';
export { DEFAULT_REQUEUE_DELAY_MS, Outcome, isOutcome } from './outcome';
export {
  DEFAULT_MAX_DELIVERIES,
  DELIVERIES_HEADER,
  ERROR_HEADER,
  QUEUE_HEADER,
  REASON_HEADER,
} from './poison';
export { closeOnSignals } from './shutdown';
export type { HandlerClass } from './routes';
export type { MessagePredicate } from './handlers';
export type { HandlingResult, ProcessingHooks } from './hooks';
export type { AckOutcome, DeadLetterOutcome, ErrorHandler, RequeueOptions, RequeueOutcome } from './outcome';
export type { DeadLetterOptions } from './poison';
export type { ProcessorCounts, RunOnceOptions, RunOnceResult } from './processor';
export type { UnknownRpc } from './dispatcher';
export type { Closable, CloseOnSignalsOptions } from './shutdown';
export type { MessageTranslator, TranslationContext } from './translator';
export { EXCHANGE_HEADER, ROUTING_KEY_HEADER } from './poison';
export { DEFAULT_RUN_ONCE_TIMEOUT_MS } from './processor';

// Restarts under a supervisor (systemd, containers) or on their own.
export { RESTART_EXIT_CODE, RESTART_EXIT_GRACE_MS, detectSupervisor } from './restart';
export type { RestartFunction, RestartPolicy, SupervisorProbe } from './restart';
