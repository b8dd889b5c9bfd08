/**
 * Transpiles the sources the benchmark's child processes run (src/, bench/, tools/meter-simulator/) to plain
 * JavaScript once, file by file with the project's compiler options: exactly what ts-node/transpile-only does,
 * but ahead of time. Measured processes then carry neither the TypeScript compiler in memory (~150 MB of RSS)
 * nor its compile time, as the service started from its build does not. Modules resolve from the repository's
 * node_modules through NODE_PATH.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import * as ts from 'typescript';
import { REPO_ROOT } from './children';

const ROOTS = ['src', 'bench', 'tools/meter-simulator'];

function sources(dir: string, found: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, found);
    else if (name.endsWith('.ts') && !name.endsWith('.spec.ts') && !name.endsWith('.d.ts')) found.push(path);
  }
  return found;
}

export interface Compiled {
  outDir: string;
  files: number;
  ms: number;
  /** Environment for a child running compiled code: its packages come from the repository. */
  env: NodeJS.ProcessEnv;
}

export function compileForChildren(outDir: string): Compiled {
  const started = performance.now();
  const configPath = join(REPO_ROOT, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const parsed = ts.convertCompilerOptionsFromJson(config.compilerOptions, REPO_ROOT);
  const compilerOptions: ts.CompilerOptions = {
    ...parsed.options,
    module: ts.ModuleKind.CommonJS,
    sourceMap: false,
    inlineSourceMap: false,
    declaration: false,
  };
  let files = 0;
  for (const root of ROOTS) {
    for (const file of sources(join(REPO_ROOT, root))) {
      const output = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions, fileName: file });
      const target = join(outDir, relative(REPO_ROOT, file)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, output.outputText);
      files++;
    }
  }
  const nodePath = [join(REPO_ROOT, 'node_modules'), process.env.NODE_PATH].filter(Boolean).join(':');
  return { outDir, files, ms: performance.now() - started, env: { NODE_PATH: nodePath } };
}
