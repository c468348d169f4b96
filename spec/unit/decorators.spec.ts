/**
 * The handler decorators in both of TypeScript's decorator modes: standard (TC39) decorators,
 * as this repository compiles, and `experimentalDecorators` (NestJS, TypeORM), compiled here
 * with the TypeScript API from the same fixture. Both must type-check and handle the same
 * messages the same way.
 */
import path from 'node:path';

import ts from 'typescript';

import { EXPECTED_SEEN, exercise } from '../fixtures/decorated-processor';

type Exercise = typeof exercise;

const root = path.resolve(__dirname, '../..');
const fixture = path.join(root, 'spec/fixtures/decorated-processor.ts');

/** NestJS's compiler settings as far as decorators and class fields go. */
const legacy: ts.CompilerOptions = {
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  target: ts.ScriptTarget.ES2021,
  useDefineForClassFields: false,
};

function baseOptions(): ts.CompilerOptions {
  const config = ts.readConfigFile(path.join(root, 'tsconfig.json'), (file) => ts.sys.readFile(file));
  return ts.parseJsonConfigFileContent(config.config, ts.sys, root).options;
}

/** Compiles the fixture with experimentalDecorators to CommonJS and loads it (lib/ through jest's require). */
function loadLegacy(): { exercise: Exercise } {
  const { outputText } = ts.transpileModule(ts.sys.readFile(fixture) ?? '', {
    compilerOptions: { ...legacy, module: ts.ModuleKind.CommonJS, esModuleInterop: true },
    fileName: fixture,
  });
  const module = { exports: {} as Record<string, unknown> };
  // The compiled fixture's require: through jest's, so that it gets the same lib/ as this spec.
  const load = (id: string): unknown => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(id.startsWith('.') ? path.resolve(path.dirname(fixture), id) : id);
  };
  new Function('require', 'module', 'exports', outputText)(load, module, module.exports);
  return module.exports as unknown as { exercise: Exercise };
}

describe('decorators', () => {
  it('decorators - the fixture type-checks with experimentalDecorators (no TS1240/TS1241)', () => {
    const program = ts.createProgram([fixture], { ...baseOptions(), ...legacy, noEmit: true });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file === undefined || path.resolve(d.file.fileName) === fixture)
      .map((d) => `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(diagnostics).toEqual([]);
  }, 60_000);

  it('decorators - standard decorators register every kind of handler', async () => {
    const result = await exercise(`memory://decorators-standard-${process.pid}`);
    expect(result).toEqual({ seen: EXPECTED_SEEN.standard, double: 42, triple: 63 });
  });

  it('decorators - experimentalDecorators register the same handlers, filters and overrides', async () => {
    const result = await loadLegacy().exercise(`memory://decorators-legacy-${process.pid}`);
    expect(result).toEqual({ seen: EXPECTED_SEEN.legacy, double: 42, triple: 63 });
  });
});
