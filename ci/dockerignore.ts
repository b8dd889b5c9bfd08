/**
 * The build context Docker would send, computed from .dockerignore with Docker's rules: patterns in order, the
 * last one that matches a path or one of its parent directories decides; `!` re-includes; `*` and `?` stay within
 * one path segment, `**` spans any number of them; a leading `/` is ignored.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Pattern {
  negated: boolean;
  regex: RegExp;
  source: string;
}

export function readDockerignore(path = '.dockerignore'): Pattern[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const body = (negated ? line.slice(1) : line).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      return { negated, regex: globToRegex(body), source: line };
    });
}

function globToRegex(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i += 1) {
    const char = glob[i];
    if (char === '*' && glob[i + 1] === '*') {
      i += 1;
      if (glob[i + 1] === '/') {
        i += 1;
        out += '(?:.*/)?';
      } else {
        out += '.*';
      }
    } else if (char === '*') {
      out += '[^/]*';
    } else if (char === '?') {
      out += '[^/]';
    } else if (char === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) throw new Error(`.dockerignore: unclosed [ in "${glob}"`);
      out += `[${glob.slice(i + 1, end).replace(/^!/, '^')}]`;
      i = end;
    } else if (char === '\\' && i + 1 < glob.length) {
      i += 1;
      out += glob[i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else {
      out += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${out}$`);
}

/** Whether Docker leaves `path` (relative, with `/`) out of the context. */
export function isIgnored(path: string, patterns: Pattern[]): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
  let ignored = false;
  for (const pattern of patterns) {
    if (candidates.some((candidate) => pattern.regex.test(candidate))) ignored = !pattern.negated;
  }
  return ignored;
}

/** Every file of `root` that would be in the build context (relative paths). */
export function contextFiles(root: string, patterns: Pattern[]): string[] {
  const files: string[] = [];
  const walk = (relative: string): void => {
    for (const entry of readdirSync(join(root, relative), { withFileTypes: true })) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        // A directory left out as a whole (node_modules, .git) is not walked, unless a later `!` pattern could
        // bring something under it back.
        if (isIgnored(path, patterns) && !patterns.some((p) => p.negated && p.source.slice(1).startsWith(path))) {
          continue;
        }
        walk(path);
      } else if (!isIgnored(path, patterns)) {
        files.push(path);
      }
    }
  };
  walk('');
  return files;
}
