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
} from './connection/config';
export { Connection } from './connection/connection';
export { DEFAULT_PREFETCH, GenericConsumer } from './connection/consumer';
export { JsonEncoder, jsonEncoder } from './messages/encoder';
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
export { Exchange, exchangeParameters } from './messages/exchange';
export { Fingerprint } from './messages/fingerprint';
export {
  Handler,
  MessageFilter,
  MessageHandler,
  MessageHandlerFullBody,
  RpcHandler,
} from './processor/handlers';
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
} from './messages/message';
export { MessageProcessor } from './processor/processor';
export { DEFAULT_MAX_MESSAGE_SIZE, GenericProducer } from './producer/producer';
export { DIRECT_REPLY_TO } from './producer/rpc-client';
export { MicroScheduler, runAll } from './processor/scheduler';
export type { RunAllHandle } from './processor/scheduler';
export { MemoryBroker } from './transport/memory';
export { TestClient } from './testing';
export { Category, ResultType, assertEnvelope, compileSchema, isEnvelope } from './messages/schema';

export type {
  ConnectionConfig,
  ConnectionOptions,
  Endpoint,
  PublishBufferOptions,
  ReconnectOptions,
} from './connection/config';
export type { ConnectionEvents, ConnectionStatus } from './connection/connection';
export type {
  ConsumerEvents,
  ConsumerOptions,
  DeliveryHandler,
  Eqk,
  QueueFlags,
  QueueSpec,
} from './connection/consumer';
export type { Encoder } from './messages/encoder';
export type { PostageErrorOptions } from './errors';
export type {
  ExchangeDefinition,
  ExchangeFields,
  ExchangeKey,
  ExchangeParameters,
  ExchangeType,
} from './messages/exchange';
export type {
  FingerprintDict,
  FingerprintLike,
  FingerprintOverrides,
  FingerprintTuple,
} from './messages/fingerprint';
export type {
  HandlerContext,
  HandlerDecorator,
  HandlerOptions,
  MessageFilterFunction,
  ReplyFunction,
} from './processor/handlers';
export type { LogFields, LogMethod, Logger, MessageFirstTarget } from './logger';
export type { MessageInit, RpcResult } from './messages/message';
export type {
  HandlerFunction,
  ProcessorEvents,
  ProcessorOptions,
  ProcessorStatus,
  RegisterOptions,
  RunResult,
  StopReason,
} from './processor/processor';
export type { ProducerOptions, RpcOptions, SendOptions } from './producer/producer';
export type {
  BuilderMethods,
  CommandArgs,
  CommandMethods,
  MessageMethod,
  Produced,
  QueueOnlyOptions,
  RpcMethod,
} from './producer/methods';
export type { RpcReplyMode } from './producer/rpc-client';
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
export type { MessageBody, ReceivedBody, ResultContent } from './messages/schema';
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
export { MessageMatcher, RpcMatcher } from './processor/handlers';
export { DEFAULT_REQUEUE_DELAY_MS, Outcome, isOutcome } from './processor/outcome';
export {
  DEFAULT_MAX_DELIVERIES,
  DELIVERIES_HEADER,
  ERROR_HEADER,
  QUEUE_HEADER,
  REASON_HEADER,
} from './processor/poison';
export { closeOnSignals } from './shutdown';
export type { HandlerClass } from './processor/routes';
export type { MessagePredicate } from './processor/handlers';
export type { HandlingResult, ProcessingHooks } from './processor/hooks';
export type {
  AckOutcome,
  DeadLetterOutcome,
  ErrorHandler,
  RequeueOptions,
  RequeueOutcome,
} from './processor/outcome';
export type { DeadLetterOptions } from './processor/poison';
export type { ProcessorCounts, RunOnceOptions, RunOnceResult } from './processor/processor';
export type { UnknownRpc } from './processor/dispatcher';
export type { Closable, CloseOnSignalsOptions } from './shutdown';
export type { MessageTranslator, TranslationContext } from './processor/translator';
export { EXCHANGE_HEADER, ROUTING_KEY_HEADER } from './processor/poison';
export { DEFAULT_RUN_ONCE_TIMEOUT_MS } from './processor/processor';

// Restarts under a supervisor (systemd, containers) or on their own.
export { RESTART_EXIT_CODE, RESTART_EXIT_GRACE_MS, detectSupervisor } from './processor/restart';
export type { RestartFunction, RestartPolicy, SupervisorProbe } from './processor/restart';
