/**
 * Type-level contract of the typed events of Connection, MessageProcessor and GenericConsumer
 * (compiled by `npm run typecheck`; the shipped declarations are compiled the same way by
 * scripts/check-package.ts): listeners get the event's arguments, unknown events and wrong
 * listeners do not compile.
 */
import type {
  Connection,
  ConnectionStatus,
  GenericConsumer,
  MessageProcessor,
  PostageError,
} from '../../lib';

declare const connection: Connection;
declare const processor: MessageProcessor;
declare const consumer: GenericConsumer;

const status: (s: ConnectionStatus) => void = (s) => void s.type;
connection.on('status', status).once('error', (error: PostageError) => void error.code);
connection.off('status', status);
connection.on('status', (s) => {
  if (s.type === 'reconnecting') void s.attempt;
});
processor.on('status', (s) => void s.type);
consumer.on('recovered', () => undefined);
consumer.prependListener('lost', (error) => void error.code);

// @ts-expect-error an event the connection does not have
connection.on('ready', () => undefined);
// @ts-expect-error a status listener gets a status, not a string
connection.on('status', (s: string) => void s);
// @ts-expect-error 'recovered' carries no error
consumer.on('recovered', (error: PostageError) => void error);
