/**
 * README.md for npm, made from README.rst at pack time (`prepack`): the npm site renders
 * Markdown only, and README.rst stays the one source. Handles what scripts/rst.ts reads; a
 * reference to a section that does not exist is an error.
 *
 *   npx tsx scripts/readme-md.ts [README.rst [README.md]]
 */
import { readFileSync, writeFileSync } from 'node:fs';

import { parseRst, RstError, type Block } from './rst';

/** GitHub's (and npm's) heading anchors: lower case, punctuation dropped, spaces to hyphens. */
export function slug(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function codeSpan(text: string): string {
  const code = text.replace(/\s*\n\s*/g, ' ');
  const fence = code.includes('`') ? '``' : '`';
  const pad = code.startsWith('`') || code.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${code}${pad}${fence}`;
}

/** Converts inline markup: literals, references to sections and to URLs; escapes what Markdown would misread. */
function inline(text: string, line: number, anchors: ReadonlyMap<string, string>, inTable = false): string {
  const parts = text.split(/(``[\s\S]+?``)/);
  return parts
    .map((part, index) => {
      if (index % 2 === 1) {
        const span = codeSpan(part.slice(2, -2));
        return inTable ? span.replace(/\|/g, '\\|') : span;
      }
      let out = part
        .replace(/\\ /g, '')
        .replace(/</g, '\\<')
        .replace(/`([^`<]+?) \\<([^>`]+)>`_/g, (_m, label: string, url: string) => `[${label}](${url})`)
        .replace(/`([^`]+)`_/g, (_m, title: string) => {
          const anchor = anchors.get(title.toLowerCase().replace(/\s+/g, ' '));
          if (anchor === undefined) throw new RstError(line, `a reference to no section: \`${title}\`_`);
          return `[${title.replace(/\s+/g, ' ')}](#${anchor})`;
        });
      if (/`/.test(out)) throw new RstError(line, 'interpreted text in single backquotes (use ``literal``)');
      if (inTable) out = out.replace(/\|/g, '\\|');
      return out;
    })
    .join('')
    .replace(/\s*\n\s*/g, ' ');
}

/** A paragraph's text on one line, so that no wrapped line starts a Markdown list or heading. */
function paragraph(text: string, line: number, anchors: ReadonlyMap<string, string>): string {
  return inline(text, line, anchors).replace(/^([#>+-]|\d+\.|\*(?!\*))/, '\\$1');
}

function table(block: Extract<Block, { kind: 'table' }>, anchors: ReadonlyMap<string, string>): string {
  const [header, ...rows] = block.header === undefined ? block.rows : [block.header, ...block.rows];
  const row = (cells: readonly string[]): string =>
    `| ${cells.map((c) => inline(c, block.line, anchors, true)).join(' | ')} |`;
  const head = header ?? [];
  return [row(head), `| ${head.map(() => '---').join(' | ')} |`, ...rows.map(row)].join('\n');
}

/** The Markdown of a reStructuredText document. */
export function rstToMarkdown(source: string, generatedFrom = 'README.rst'): string {
  const blocks = parseRst(source);
  const anchors = new Map<string, string>();
  const used = new Map<string, number>();
  for (const block of blocks) {
    if (block.kind !== 'section') continue;
    const base = slug(block.title);
    const count = used.get(base) ?? 0;
    used.set(base, count + 1);
    const key = block.title.toLowerCase().replace(/\s+/g, ' ');
    if (!anchors.has(key)) anchors.set(key, count === 0 ? base : `${base}-${count}`);
  }
  const out: string[] = [
    `<!-- Generated from ${generatedFrom} by scripts/readme-md.ts when the package is packed: edit ${generatedFrom}. -->`,
  ];
  for (const [index, block] of blocks.entries()) {
    switch (block.kind) {
      case 'section':
        out.push(`${'#'.repeat(block.level)} ${inline(block.title, block.line, anchors)}`);
        break;
      case 'paragraph':
        out.push(paragraph(block.text, block.line, anchors));
        break;
      case 'list':
        out.push(
          block.items
            .map((item, n) => `${block.ordered ? `${n + 1}.` : '-'} ${inline(item, block.line, anchors)}`)
            .join('\n'),
        );
        break;
      case 'table':
        out.push(table(block, anchors));
        break;
      case 'code':
        out.push(`\`\`\`${block.language}\n${block.code}\`\`\``);
        break;
      case 'contents': {
        const level = blocks.find((b) => b.kind === 'section' && b.level > 1 && blocks.indexOf(b) > index);
        const top = level?.kind === 'section' ? level.level : 2;
        const entries = blocks
          .slice(index + 1)
          .filter((b): b is Extract<Block, { kind: 'section' }> => b.kind === 'section')
          .filter((b) => b.level >= top && b.level < top + block.depth)
          .map(
            (b) =>
              `${'  '.repeat(b.level - top)}- [${b.title}](#${anchors.get(b.title.toLowerCase()) ?? ''})`,
          );
        out.push(entries.join('\n'));
        break;
      }
      case 'comment':
        break;
    }
  }
  return `${out.join('\n\n')}\n`;
}

if (require.main === module) {
  const [from = 'README.rst', to = 'README.md'] = process.argv.slice(2);
  try {
    writeFileSync(to, rstToMarkdown(readFileSync(from, 'utf8'), from));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}
