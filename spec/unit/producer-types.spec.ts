import path from 'node:path';

import ts from 'typescript';

describe('producer types', () => {
  it('producer types - generated methods are typed: wrong names and arguments do not compile', () => {
    const root = path.resolve(__dirname, '../..');
    const configPath = path.join(root, 'tsconfig.json');
    const config = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
    const fixture = path.join(root, 'spec/types/producer-api.ts');
    const program = ts.createProgram([fixture], { ...parsed.options, noEmit: true });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file === undefined || path.resolve(d.file.fileName) === fixture)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    // Any valid line failing, or any @ts-expect-error line compiling ("Unused '@ts-expect-error'"), shows up here.
    expect(diagnostics).toEqual([]);
    const source = ts.sys.readFile(fixture) ?? '';
    expect(source.match(/\/\/ @ts-expect-error/g)?.length).toBe(11);
  }, 60_000);
});
