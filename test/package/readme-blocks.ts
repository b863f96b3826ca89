// The ```ts blocks of a Markdown file, with the `## ` section each is in and its first line.
export interface Block {
  section: string;
  line: number;
  code: string;
}

export function tsBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let section = '';
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.startsWith('## ')) section = lines[i]!.slice(3);
    if (lines[i] !== '```ts') continue;
    const start = i + 1;
    while (++i < lines.length && lines[i] !== '```');
    blocks.push({ section, line: start + 1, code: lines.slice(start, i).join('\n') });
  }
  return blocks;
}
