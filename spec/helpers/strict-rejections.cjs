/**
 * Required by every jest config: an unhandled rejection fails the run (issue 12).
 *
 * jest-circus already fails the test (or the file) during which a rejection goes unhandled.
 * Node's `--unhandled-rejections=strict`, set here for the workers jest forks and every process
 * a spec spawns (fixtures, demos), also raises one that some `unhandledRejection` listener
 * would swallow, and one that comes between or after test files, as an uncaught exception: the
 * test fails, or the worker or the child process ends with an error. A run in band (faults,
 * cluster) runs in jest's own process, whose default mode (`throw`) does the same when no
 * listener is there.
 */
const FLAG = '--unhandled-rejections=strict';
const current = process.env.NODE_OPTIONS ?? '';
if (!current.split(/\s+/).includes(FLAG)) process.env.NODE_OPTIONS = `${current} ${FLAG}`.trim();
