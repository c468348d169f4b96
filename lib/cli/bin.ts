#!/usr/bin/env node
/**
 * The `postage` executable: runs {@link main} with the process's arguments and exits with its
 * code once standard output is flushed (a library handle left open cannot keep it alive).
 */
import { ConsoleLogger, setLogger } from '..';
import { main } from './main';

// Retries and recoveries are the library's business; the command reports how it ended.
setLogger(new ConsoleLogger('error'));
main(process.argv.slice(2)).then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    process.stderr.write(`postage: ${String(err)}\n`);
    process.exit(1);
  },
);
