/**
 * README.md for npm, made from README.rst at pack time (`prepack`): the npm site renders
 * Markdown only, and README.rst stays the one source. Handles what scripts/rst.ts reads; a
 * reference to a section that does not exist is an error, and so is a relative link to a file that
 * is not in the repository (npm renders relative links against the repository, so they stay
 * relative; the files they name must exist and must not be outside it).
 *
 *   npx tsx scripts/readme-md.ts [README.rst [README.md]]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

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

/** Where relative links are checked: the document's folder, inside the repository's root. */
export interface LinkRoot {
  /** The folder relative links are resolved from (the rst file's). */
  readonly dir: string;
  /** The repository's root: no link may leave it. */
  readonly repository: string;
}

/** Throws when a relative link names no file of the repository. URLs and anchors pass. */
function checkLink(url: string, line: number, root: LinkRoot | undefined): void {
  if (root === undefined || /^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith('#')) return;
  const target = path.resolve(root.dir, decodeURI(url.replace(/[#?].*$/, '')));
  const inside = path.relative(root.repository, target);
  if (inside.startsWith('..') || path.isAbsolute(inside)) {
    throw new RstError(line, `a link to a file outside the repository: ${url}`);
  }
  if (!existsSync(target)) throw new RstError(line, `a link to a file that does not exist: ${url}`);
}

/** Converts inline markup: literals, references to sections and to URLs; escapes what Markdown would misread. */
function inline(
  text: string,
  line: number,
  anchors: ReadonlyMap<string, string>,
  inTable = false,
  root?: LinkRoot,
): string {
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
        .replace(/`([^`<]+?)\s+\\<([^>`]+)>`_/g, (_m, label: string, url: string) => {
          const target = url.replace(/\s+/g, '');
          checkLink(target, line, root);
          return `[${label.replace(/\s+/g, ' ')}](${target})`;
        })
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
function paragraph(
  text: string,
  line: number,
  anchors: ReadonlyMap<string, string>,
  root: LinkRoot | undefined,
): string {
  return inline(text, line, anchors, false, root).replace(/^([#>+-]|\d+\.|\*(?!\*))/, '\\$1');
}

function table(
  block: Extract<Block, { kind: 'table' }>,
  anchors: ReadonlyMap<string, string>,
  root: LinkRoot | undefined,
): string {
  const [header, ...rows] = block.header === undefined ? block.rows : [block.header, ...block.rows];
  const row = (cells: readonly string[]): string =>
    `| ${cells.map((c) => inline(c, block.line, anchors, true, root)).join(' | ')} |`;
  const head = header ?? [];
  return [row(head), `| ${head.map(() => '---').join(' | ')} |`, ...rows.map(row)].join('\n');
}

/**
 * The Markdown of a reStructuredText document. With `root`, every relative link must name a file
 * of the repository.
 */
export function rstToMarkdown(source: string, generatedFrom = 'README.rst', root?: LinkRoot): string {
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
        out.push(paragraph(block.text, block.line, anchors, root));
        break;
      case 'list':
        out.push(
          block.items
            .map(
              (item, n) =>
                `${block.ordered ? `${n + 1}.` : '-'} ${inline(item, block.line, anchors, false, root)}`,
            )
            .join('\n'),
        );
        break;
      case 'table':
        out.push(table(block, anchors, root));
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
    const root = { dir: path.dirname(path.resolve(from)), repository: path.resolve(__dirname, '..') };
    writeFileSync(to, rstToMarkdown(readFileSync(from, 'utf8'), from, root));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}
