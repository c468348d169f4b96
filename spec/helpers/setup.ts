/**
 * Runs before every spec file: the default logger is silent unless POSTAGE_TEST_LOG names a
 * level (e.g. POSTAGE_TEST_LOG=debug npm test). Specs that assert on logs use MemoryLogger.
 */
import { ConsoleLogger, setLogger, type LogLevel } from '../../lib';

setLogger(new ConsoleLogger((process.env['POSTAGE_TEST_LOG'] as LogLevel | undefined) ?? 'silent'));
