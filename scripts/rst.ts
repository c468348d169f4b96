/**
 * A reader for the reStructuredText that README.rst uses, no more: sections (a title with an
 * overline, then underlined sections), paragraphs, bullet and enumerated lists, simple tables,
 * `.. code:: lang` blocks, `.. contents::` and comments. Anything else (another directive, a
 * grid table, a nested list) is an error naming its line, so a README construct that the
 * Markdown rendering or the example check would get wrong fails the build instead.
 */

/** A block of the document, with the line (1-based) it starts on. */
export type Block =
  | { kind: 'section'; line: number; level: number; title: string }
  | { kind: 'paragraph'; line: number; text: string }
  | { kind: 'list'; line: number; ordered: boolean; items: string[] }
  | { kind: 'table'; line: number; header: string[] | undefined; rows: string[][] }
  | { kind: 'code'; line: number; language: string; code: string }
  | { kind: 'contents'; line: number; depth: number }
  | { kind: 'comment'; line: number; text: string };

/** A syntax this reader does not handle, at a line of the source. */
export class RstError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`README.rst:${line}: ${message}`);
  }
}

const ADORNMENT = /^([=\-~^"'`#*+.:_])\1{2,}$/;
const TABLE_BORDER = /^=+( +=+)+$/;
const BULLET = /^[*-] /;
const ENUMERATED = /^\d+\. /;

const indentOf = (line: string): number => line.length - line.trimStart().length;
const isBlank = (line: string | undefined): boolean => line === undefined || line.trim() === '';

/** The indented lines after `start` (blank lines inside kept), dedented, and the index after them. */
function indentedBlock(lines: readonly string[], start: number): { body: string[]; next: number } {
  let end = start;
  let last = start;
  while (end < lines.length && (isBlank(lines[end]) || indentOf(lines[end] as string) > 0)) {
    if (!isBlank(lines[end])) last = end + 1;
    end++;
  }
  const body = lines.slice(start, last);
  const margin = Math.min(...body.filter((l) => !isBlank(l)).map(indentOf));
  return { body: body.map((l) => (isBlank(l) ? '' : l.slice(margin))), next: last };
}

/** Splits a simple table's line into cells at the column starts of its border. */
function cells(line: string, columns: ReadonlyArray<readonly [number, number]>): string[] {
  return columns.map(([from], i) => {
    const to = i + 1 < columns.length ? (columns[i + 1] as readonly [number, number])[0] : line.length;
    const cell = line.slice(from, to).trim();
    return cell === '\\' ? '' : cell;
  });
}

function table(lines: readonly string[], start: number): { block: Block; next: number } {
  const border = lines[start] as string;
  const columns: Array<[number, number]> = [];
  for (const m of border.matchAll(/=+/g)) columns.push([m.index, m.index + m[0].length]);
  const groups: string[][][] = [[]];
  let i = start + 1;
  for (; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trimEnd() === border.trimEnd()) {
      if (isBlank(lines[i + 1])) break;
      groups.push([]);
      continue;
    }
    if (isBlank(line)) throw new RstError(i + 1, 'a blank line inside a simple table');
    const group = groups[groups.length - 1] as string[][];
    const row = cells(line, columns);
    // A line whose first column is blank continues the row above (docutils' rule).
    if (row[0] === '' && !line.startsWith('\\') && group.length > 0) {
      const above = group[group.length - 1] as string[];
      row.forEach((cell, c) => {
        if (cell !== '') above[c] = `${above[c] ?? ''} ${cell}`.trim();
      });
    } else {
      group.push(row);
    }
  }
  if (i >= lines.length) throw new RstError(start + 1, 'a simple table without its closing border');
  if (groups.length > 2) throw new RstError(start + 1, 'a simple table with more than one header border');
  const header = groups.length === 2 ? groups[0]?.[0] : undefined;
  const rows = (groups.length === 2 ? groups[1] : groups[0]) as string[][];
  return { block: { kind: 'table', line: start + 1, header, rows }, next: i + 1 };
}

function list(lines: readonly string[], start: number, ordered: boolean): { block: Block; next: number } {
  const marker = ordered ? ENUMERATED : BULLET;
  const items: string[] = [];
  let i = start;
  while (i < lines.length && marker.test(lines[i] as string)) {
    const first = lines[i] as string;
    const width = (first.match(marker) as RegExpMatchArray)[0].length;
    const text = [first.slice(width)];
    i++;
    while (i < lines.length && !isBlank(lines[i]) && indentOf(lines[i] as string) >= width) {
      const line = (lines[i] as string).trim();
      if (BULLET.test(line) || ENUMERATED.test(line)) throw new RstError(i + 1, 'a nested list');
      text.push(line);
      i++;
    }
    if (i < lines.length && !isBlank(lines[i]) && indentOf(lines[i] as string) > 0) {
      throw new RstError(i + 1, `a list item's line indented by other than ${width}`);
    }
    items.push(text.join(' '));
    // Items may be separated by one blank line.
    if (isBlank(lines[i]) && marker.test(lines[i + 1] ?? '')) i++;
  }
  return { block: { kind: 'list', line: start + 1, ordered, items }, next: i };
}

/** Reads a document into blocks. */
export function parseRst(source: string): Block[] {
  const lines = source.replace(/\r\n/g, '\n').split('\n');
  const styles: string[] = [];
  const levelOf = (style: string): number => {
    if (!styles.includes(style)) styles.push(style);
    return styles.indexOf(style) + 1;
  };
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    const next = lines[i + 1];
    if (isBlank(line)) {
      i++;
      continue;
    }
    if (indentOf(line) > 0) throw new RstError(i + 1, 'an indented block that no directive or list owns');
    if (ADORNMENT.test(line) && !TABLE_BORDER.test(line) && next !== undefined && lines[i + 2] === line) {
      // A title with an overline: its style differs from an underline of the same character.
      blocks.push({ kind: 'section', line: i + 1, level: levelOf(`over${line[0]}`), title: next.trim() });
      i += 3;
      continue;
    }
    if (
      next !== undefined &&
      ADORNMENT.test(next) &&
      !TABLE_BORDER.test(next) &&
      next.length >= line.length
    ) {
      blocks.push({ kind: 'section', line: i + 1, level: levelOf(next[0] as string), title: line.trim() });
      i += 2;
      continue;
    }
    if (TABLE_BORDER.test(line) || /^=+$/.test(line)) {
      const { block, next: after } = table(lines, i);
      blocks.push(block);
      i = after;
      continue;
    }
    const directive = /^\.\. ([a-z-]+)::\s*(.*)$/.exec(line);
    if (directive !== null) {
      const [, name, argument] = directive as unknown as [string, string, string];
      const { body, next: after } = indentedBlock(lines, i + 1);
      const options = new Map<string, string>();
      while (body.length > 0 && /^:[a-z-]+:/.test(body[0] as string)) {
        const m = /^:([a-z-]+):\s*(.*)$/.exec(body.shift() as string) as RegExpExecArray;
        options.set(m[1] as string, m[2] as string);
      }
      if (name === 'code' || name === 'code-block' || name === 'sourcecode') {
        if (argument === '') throw new RstError(i + 1, 'a code block without a language');
        while (body[0] === '') body.shift();
        blocks.push({ kind: 'code', line: i + 1, language: argument, code: `${body.join('\n')}\n` });
      } else if (name === 'contents') {
        if (options.get('local') === undefined) throw new RstError(i + 1, 'contents without :local:');
        blocks.push({ kind: 'contents', line: i + 1, depth: Number(options.get('depth') ?? '1') });
      } else {
        throw new RstError(i + 1, `the directive '${name}' (only code and contents are handled)`);
      }
      i = after;
      continue;
    }
    if (line === '..' || (line.startsWith('.. ') && !/^\.\. [_|[]/.test(line))) {
      const { body, next: after } = indentedBlock(lines, i + 1);
      blocks.push({ kind: 'comment', line: i + 1, text: [line.slice(3), ...body].join('\n').trim() });
      i = after;
      continue;
    }
    if (line.startsWith('.. ')) throw new RstError(i + 1, 'a target, footnote or substitution');
    if (BULLET.test(line) || ENUMERATED.test(line)) {
      const { block, next: after } = list(lines, i, ENUMERATED.test(line));
      blocks.push(block);
      i = after;
      continue;
    }
    const start = i;
    const text: string[] = [];
    while (i < lines.length && !isBlank(lines[i])) {
      if (indentOf(lines[i] as string) > 0) throw new RstError(i + 1, 'an indented line inside a paragraph');
      if (ADORNMENT.test(lines[i + 1] ?? '') && text.length > 0) {
        throw new RstError(i + 2, 'a section title with no blank line before it');
      }
      text.push(lines[i] as string);
      i++;
    }
    if ((text[text.length - 1] as string).endsWith('::')) {
      throw new RstError(i, 'a literal block (use .. code:: with a language)');
    }
    blocks.push({ kind: 'paragraph', line: start + 1, text: text.join('\n') });
  }
  return blocks;
}
