/**
 * The npm README (Markdown made from README.rst at pack time) and the README example
 * conventions of scripts/check-package.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { readmeExamples } from '../../scripts/check-package';
import { rstToMarkdown } from '../../scripts/readme-md';
import { RstError } from '../../scripts/rst';

const doc = `=====
Title
=====

.. contents::
   :local:
   :depth: 1

First section
=============

Text with \`\`code | pipe\`\`, **bold**, a <placeholder> and a link to \`Second one\`_,
- not a list: a wrapped line.

* one item
  continued
* two

Sub
---

=======  ==============
option   meaning
=======  ==============
\`\`a|b\`\`  first line
         continued
\\        no option
=======  ==============

Second one
==========

.. example: continues

.. code:: ts

    const x = 1;
`;

const root = path.resolve(__dirname, '../..');
const repository = { dir: root, repository: root };

describe('readme-md', () => {
  it('readme-md - sections, contents, inline markup, lists, tables and code become Markdown', () => {
    const md = rstToMarkdown(doc);
    expect(md).toContain('# Title\n');
    expect(md).toContain('- [First section](#first-section)\n- [Second one](#second-one)\n');
    expect(md).toContain(
      'Text with `code | pipe`, **bold**, a \\<placeholder> and a link to [Second one](#second-one), - not a list: a wrapped line.',
    );
    expect(md).toContain('- one item continued\n- two');
    expect(md).toContain('### Sub');
    expect(md).toContain(
      '| option | meaning |\n| --- | --- |\n| `a\\|b` | first line continued |\n|  | no option |',
    );
    expect(md).toContain('```ts\nconst x = 1;\n```');
    expect(md).not.toContain('example:');
  });

  it('readme-md - a reference to no section, or a directive it does not know, is an error with its line', () => {
    expect(() => rstToMarkdown('Text and `Nowhere`_.\n')).toThrow(RstError);
    expect(() => rstToMarkdown('.. note::\n\n   hi\n')).toThrow(/README.rst:1: the directive 'note'/);
  });

  it('readme-md - a link may wrap across lines; a relative link to a file of the repository stays relative', () => {
    const md = rstToMarkdown(
      'See `the guide\n<docs/guide.md>`_ and `npm <https://www.npmjs.com/>`_.\n',
      'README.rst',
      repository,
    );
    expect(md).toContain('See [the guide](docs/guide.md) and [npm](https://www.npmjs.com/).');
  });

  it('readme-md - a relative link to a file that does not exist, or outside the repository, is an error', () => {
    expect(() => rstToMarkdown('A `gone <docs/gone.md>`_ file.\n', 'README.rst', repository)).toThrow(
      /README.rst:1: a link to a file that does not exist: docs\/gone.md/,
    );
    expect(() => rstToMarkdown('The `notes <../shared/notes.md>`_.\n', 'README.rst', repository)).toThrow(
      /a link to a file outside the repository: ..\/shared\/notes.md/,
    );
    // Without a root (a document on its own) links are not checked.
    expect(rstToMarkdown('A `gone <docs/gone.md>`_ file.\n')).toContain('[gone](docs/gone.md)');
  });

  it('readme-md - README.rst converts, its links name files of the repository, and its examples include the quick start files', () => {
    const source = readFileSync(path.resolve(__dirname, '../../README.rst'), 'utf8');
    expect(rstToMarkdown(source, 'README.rst', repository)).toContain('npm install postage-amqp');
    const files = readmeExamples(source).map((e) => e.file);
    expect(files).toEqual(expect.arrayContaining(['echo_shared.ts', 'echo_receive.ts', 'echo_send.ts']));
  });

  it("readme-md - examples: 'continues' appends to the block before, 'fragment' leaves a block out", () => {
    const source = [
      '.. code:: ts',
      '',
      '    // a.ts',
      '    const a = 1;',
      '',
      '.. example: continues',
      '',
      '.. code:: ts',
      '',
      '    const b = a;',
      '',
      '.. example: fragment',
      '',
      '.. code:: ts',
      '',
      '    { shape }',
      '',
      '.. code:: ts',
      '',
      '    const c = 3;',
      '',
    ].join('\n');
    const examples = readmeExamples(source);
    expect(examples.map((e) => e.file)).toEqual(['a.ts', 'readme-18.ts']);
    expect(examples[0]?.code).toContain('const a = 1;\n\n// README.rst:8\nconst b = a;');
    expect(() => readmeExamples('.. example: maybe\n\n.. code:: ts\n\n    x\n')).toThrow(
      /unknown example marker/,
    );
  });
});
