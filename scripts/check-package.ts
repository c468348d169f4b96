/**
 * `npm run check:package`: the package as a user meets it. Packs the tarball (which builds and
 * writes README.md), checks what it holds, installs it into a fresh project in a temp
 * directory, and there:
 *
 * 1. compiles every TypeScript example of README.rst (strict, `module`/`moduleResolution`
 *    `nodenext`, ES module, `skipLibCheck: false`) and every declaration file the package ships;
 * 2. runs the quick start on memory:// and checks what the receiver printed, and runs the
 *    README's `*.test.ts` examples with node's test runner;
 * 3. compiles and runs a decorated processor with standard decorators and with
 *    `experimentalDecorators`, as an ES module and as CommonJS (the latter also with NestJS's
 *    `module: commonjs`, `moduleResolution: node10`, `target: ES2021`);
 * 4. compiles and runs a CommonJS program, which also checks that `require` and `import` give
 *    one copy of postage.
 *
 * The project needs the npm registry only (the tarball's dependencies, and typescript and
 * @types/node at this repository's versions). `--keep` keeps the temp directory.
 *
 * README examples: each `.. code:: ts` block is a module of its own, named `readme-<line>.ts`,
 * or by its first line when that is a comment naming a file (`// echo_send.ts`). An rst
 * comment just before a block changes that: `.. example: continues` appends the block to the
 * example before it (one module read top to bottom), `.. example: fragment` leaves it out (a
 * shape, not a program: keep these rare). A file named `*.test.ts` is run with `node --test`.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { parseRst } from './rst';

const root = path.resolve(__dirname, '..');

class CheckFailed extends Error {}

function step(text: string): void {
  process.stdout.write(`[check:package] ${text}\n`);
}

/** Runs a command; throws with its output when it fails. Returns stdout. */
function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  const result = spawnSync(command, args, {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) {
    throw new CheckFailed(
      `${command} ${args.join(' ')} (in ${cwd}) failed: ${result.error?.message ?? `exit ${String(result.status ?? result.signal)}`}\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** A README example: the module it goes to and its code. */
export interface Example {
  readonly file: string;
  readonly line: number;
  code: string;
}

/** The TypeScript examples of an rst document, by the conventions above. */
export function readmeExamples(source: string): Example[] {
  const examples: Example[] = [];
  let marker: string | undefined;
  for (const block of parseRst(source)) {
    if (block.kind === 'comment') {
      const m = /^example:\s*(\S+)$/.exec(block.text);
      if (block.text.startsWith('example:') && m === null) {
        throw new CheckFailed(`README.rst:${block.line}: an example marker must be 'example: <kind>'`);
      }
      marker = m?.[1];
      if (marker !== undefined && marker !== 'continues' && marker !== 'fragment') {
        throw new CheckFailed(`README.rst:${block.line}: unknown example marker '${marker}'`);
      }
      continue;
    }
    if (block.kind === 'code' && (block.language === 'ts' || block.language === 'typescript')) {
      if (marker === 'continues') {
        const previous = examples[examples.length - 1];
        if (previous === undefined) throw new CheckFailed(`README.rst:${block.line}: nothing to continue`);
        previous.code += `\n// README.rst:${block.line}\n${block.code}`;
      } else if (marker !== 'fragment') {
        const named = /^\/\/ ([\w.-]+\.ts)\b/.exec(block.code)?.[1];
        const file = named ?? `readme-${block.line}.ts`;
        if (examples.some((e) => e.file === file))
          throw new CheckFailed(`README.rst:${block.line}: two examples named ${file}`);
        examples.push({ file, line: block.line, code: `// README.rst:${block.line}\n${block.code}` });
      }
    }
    marker = undefined;
  }
  return examples;
}

/** Strict settings every variant shares. */
const strict = { strict: true, skipLibCheck: false, types: ['node'], noEmitOnError: true };

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: Array<{ path: string }>;
}

function pack(into: string): PackResult {
  step('npm pack (prepack builds dist/ and README.md)');
  const json = run('npm', ['pack', '--json', '--pack-destination', into], root);
  const [result] = JSON.parse(json.slice(json.indexOf('['))) as PackResult[];
  if (result === undefined) throw new CheckFailed('npm pack printed no result');
  const allowed = /^(package\.json|README\.md|README\.rst|LICENSE|dist\/.+\.(js|mjs|d\.ts|d\.mts))$/;
  const stray = result.files.map((f) => f.path).filter((f) => !allowed.test(f));
  if (stray.length > 0)
    throw new CheckFailed(`the tarball holds files a user does not need:\n${stray.join('\n')}`);
  for (const needed of [
    'LICENSE',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.mjs',
    'dist/cli/bin.js',
  ]) {
    if (!result.files.some((f) => f.path === needed)) throw new CheckFailed(`the tarball lacks ${needed}`);
  }
  if (!readFileSync(path.join(root, 'LICENSE'), 'utf8').includes('GNU GENERAL PUBLIC LICENSE')) {
    throw new CheckFailed('LICENSE does not hold the GPL text');
  }
  step(
    `${result.filename}: ${(result.size / 1000).toFixed(1)} kB packed, ${(result.unpackedSize / 1000).toFixed(1)} kB unpacked, ${result.files.length} files`,
  );
  return result;
}

function versionOf(name: string): string {
  return (
    JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
}

function install(app: string, tarball: string): void {
  writeJson(path.join(app, 'package.json'), { name: 'postage-check', private: true, type: 'module' });
  const packages = [
    tarball,
    `typescript@${versionOf('typescript')}`,
    `@types/node@${versionOf('@types/node')}`,
  ];
  step(`npm install ${packages.map((p) => (p === tarball ? path.basename(p) : p)).join(' ')}`);
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...packages], app);
}

/** The project's own tsc (installed at `app`), on a tsconfig relative to `cwd`. */
function tsc(app: string, config: string, cwd = app): void {
  run(process.execPath, [path.join(app, 'node_modules/typescript/bin/tsc'), '-p', config], cwd);
}

function checkReadme(app: string): void {
  const examples = readmeExamples(readFileSync(path.join(root, 'README.rst'), 'utf8'));
  const dir = path.join(app, 'readme');
  mkdirSync(dir, { recursive: true });
  for (const example of examples) writeFileSync(path.join(dir, example.file), example.code);
  copyFileSync(path.join(root, 'scripts/package-check/quick-start.ts'), path.join(dir, 'run-quick-start.ts'));
  writeJson(path.join(app, 'tsconfig.readme.json'), {
    compilerOptions: {
      ...strict,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      outDir: 'out/readme',
    },
    include: ['readme'],
  });
  step(
    `README.rst: compiling ${examples.length} TypeScript examples (${examples.map((e) => e.file).join(', ')})`,
  );
  tsc(app, 'tsconfig.readme.json');

  const out = path.join(app, 'out/readme');
  step('README.rst: running the quick start on memory://');
  const printed = run(process.execPath, ['run-quick-start.js'], out, { POSTAGE_URL: 'memory://' });
  // The receiver says it waits once it is ready, then prints the echo.
  const expected = 'waiting for echo commands\nA test message';
  if (printed.trim() !== expected) {
    throw new CheckFailed(
      `the quick start's receiver printed ${JSON.stringify(printed)}, not ${JSON.stringify(expected)}`,
    );
  }
  const tests = readdirSync(out).filter((f) => f.endsWith('.test.js'));
  if (tests.length > 0) {
    step(`README.rst: node --test ${tests.join(' ')}`);
    run(process.execPath, ['--test', ...tests], out);
  }
}

function checkDeclarations(app: string): void {
  const dist = path.join(app, 'node_modules/postage-amqp/dist');
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (/\.d\.m?ts$/.test(entry.name)) files.push(path.relative(app, file));
    }
  };
  walk(dist);
  writeJson(path.join(app, 'tsconfig.dts.json'), {
    compilerOptions: {
      ...strict,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      noEmit: true,
    },
    files,
  });
  step(`compiling all ${files.length} declaration files of the package (skipLibCheck: false)`);
  tsc(app, 'tsconfig.dts.json');
}

/** Compiler settings of each decorator variant, and the folder (module format) it compiles in. */
const decoratorVariants = [
  {
    name: 'esm-standard',
    dir: '.',
    mode: 'standard',
    options: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022' },
  },
  {
    name: 'esm-legacy',
    dir: '.',
    mode: 'legacy',
    options: {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2021',
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
    },
  },
  {
    name: 'cjs-standard',
    dir: 'cjs',
    mode: 'standard',
    options: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022' },
  },
  {
    // NestJS's tsconfig, as far as modules, target and decorators go.
    name: 'cjs-nest',
    dir: 'cjs',
    mode: 'legacy',
    options: {
      module: 'commonjs',
      moduleResolution: 'node10',
      target: 'es2021',
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
    },
  },
] as const;

function checkDecoratorsAndCommonJs(app: string): void {
  const fixture = readFileSync(path.join(root, 'spec/fixtures/decorated-processor.ts'), 'utf8');
  const source = fixture.replace("from '../../lib';", "from 'postage-amqp';");
  if (source === fixture)
    throw new CheckFailed('spec/fixtures/decorated-processor.ts no longer imports ../../lib');
  writeJson(path.join(app, 'cjs/package.json'), { type: 'commonjs' });
  for (const dir of ['.', 'cjs']) {
    mkdirSync(path.join(app, dir, 'decorators'), { recursive: true });
    writeFileSync(path.join(app, dir, 'decorators/decorated-processor.ts'), source);
  }
  copyFileSync(path.join(root, 'scripts/package-check/commonjs.ts'), path.join(app, 'cjs/commonjs.ts'));
  writeJson(path.join(app, 'cjs/tsconfig.json'), {
    compilerOptions: {
      ...strict,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      outDir: 'out/commonjs',
    },
    files: ['commonjs.ts'],
  });
  step('CommonJS: compiling and running a program that requires postage-amqp');
  tsc(app, 'tsconfig.json', path.join(app, 'cjs'));
  const printed = run(process.execPath, ['out/commonjs/commonjs.js'], path.join(app, 'cjs'));
  if (!printed.includes('commonjs: ok'))
    throw new CheckFailed(`the CommonJS program printed ${JSON.stringify(printed)}`);

  for (const variant of decoratorVariants) {
    const dir = path.join(app, variant.dir);
    const outDir = `out/${variant.name}`;
    writeJson(path.join(dir, `tsconfig.${variant.name}.json`), {
      compilerOptions: { ...strict, ...variant.options, outDir },
      files: ['decorators/decorated-processor.ts'],
    });
    step(`decorators (${variant.name}): compiling and running the decorated processor`);
    tsc(app, `tsconfig.${variant.name}.json`, dir);
    const runner = path.join(dir, outDir, variant.dir === 'cjs' ? 'run.cjs' : 'run.mjs');
    const load =
      variant.dir === 'cjs'
        ? "const { EXPECTED_SEEN, exercise } = require('./decorated-processor.js');"
        : "import { EXPECTED_SEEN, exercise } from './decorated-processor.js';";
    writeFileSync(
      runner,
      [
        load,
        variant.dir === 'cjs'
          ? "const assert = require('node:assert/strict');"
          : "import assert from 'node:assert/strict';",
        '(async () => {',
        `  const result = await exercise('memory://check-${variant.name}');`,
        `  assert.deepEqual(result, { seen: EXPECTED_SEEN['${variant.mode}'], double: 42, triple: 63 });`,
        "  process.stdout.write('decorators: ok\\n');",
        '})().catch((error) => { console.error(error); process.exitCode = 1; });',
        '',
      ].join('\n'),
    );
    const output = run(process.execPath, [runner], dir);
    if (!output.includes('decorators: ok'))
      throw new CheckFailed(`${variant.name} printed ${JSON.stringify(output)}`);
  }
}

/** The installed `postage` executable: on the project's PATH (node_modules/.bin), it runs and answers. */
function checkCommandLine(app: string): void {
  step('postage --help and postage config through node_modules/.bin (the package bin)');
  const bin = path.join(app, 'node_modules/.bin/postage');
  const helpText = run(bin, ['--help'], app);
  if (!helpText.includes('usage: postage') || !helpText.includes('  send ')) {
    throw new CheckFailed(`postage --help printed ${JSON.stringify(helpText.slice(0, 200))}`);
  }
  const config = run(bin, ['--json', 'config'], app, {
    POSTAGE_URL: 'amqp://check:check-secret@127.0.0.1:5999/',
  });
  if (config.includes('check-secret') || !config.includes('"user": "check"')) {
    throw new CheckFailed(`postage config printed ${JSON.stringify(config.slice(0, 300))}`);
  }
}

function main(): number {
  const keep = process.argv.includes('--keep');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'postage-package-'));
  try {
    const packed = pack(tmp);
    const app = path.join(tmp, 'app');
    install(app, path.join(tmp, packed.filename));
    checkDeclarations(app);
    checkReadme(app);
    checkDecoratorsAndCommonJs(app);
    checkCommandLine(app);
    step('all checks passed');
    return 0;
  } catch (error) {
    process.stderr.write(
      `[check:package] FAILED: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 1;
  } finally {
    if (keep) step(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) process.exit(main());
