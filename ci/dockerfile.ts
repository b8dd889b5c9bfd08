/**
 * What the Dockerfile says, read with dockerfile-ast (the parser behind dockerfile-utils): stages, their
 * instructions, and the final image's configuration (ENV, WORKDIR, USER, ENTRYPOINT, CMD, HEALTHCHECK). Shared by
 * the lint (ci/dockerfile-lint.ts) and the entry check (ci/image-entry-check.ts), so both read one truth.
 */
import { readFileSync } from 'node:fs';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';

export interface StageInstruction {
  keyword: string;
  /** 1-based line in the Dockerfile. */
  line: number;
  /** Arguments without flags, continuation lines joined. */
  text: string;
  args: string[];
  flags: Record<string, string | null>;
  /** Exec form (JSON array) when the instruction uses it. */
  json: string[] | null;
}

export interface Stage {
  name: string | null;
  image: string;
  line: number;
  instructions: StageInstruction[];
}

export interface ImageConfig {
  stage: Stage;
  env: Record<string, string>;
  workdir: string;
  user: string | null;
  entrypoint: string[] | null;
  cmd: string[] | null;
  healthcheck: { cmd: string[] | null; flags: Record<string, string | null> } | null;
  expose: string[];
  stopSignal: string | null;
}

export interface ParsedDockerfile {
  content: string;
  stages: Stage[];
  final: ImageConfig;
}

export function readDockerfile(path = 'Dockerfile'): ParsedDockerfile {
  const content = readFileSync(path, 'utf8');
  const dockerfile = DockerfileParser.parse(content);
  const froms = dockerfile.getFROMs();
  const stages: Stage[] = froms.map((from) => ({
    name: from.getBuildStage(),
    image: from.getImage() ?? '',
    line: from.getRange().start.line + 1,
    instructions: [],
  }));
  for (const instruction of dockerfile.getInstructions()) {
    const line = instruction.getRange().start.line + 1;
    const stage = [...stages].reverse().find((candidate) => candidate.line <= line);
    if (!stage || instruction.getKeyword() === 'FROM') continue;
    stage.instructions.push(describe(instruction, line));
  }
  const last = stages.at(-1);
  if (!last) throw new Error('the Dockerfile has no FROM');
  // ENV values as Docker sets them (quotes removed); only the final stage's make the image's environment.
  const env: Record<string, string> = {};
  for (const instruction of dockerfile.getENVs()) {
    if (instruction.getRange().start.line + 1 < last.line) continue;
    for (const property of instruction.getProperties()) env[property.getName()] = property.getValue() ?? '';
  }
  return { content, stages, final: imageConfig(last, env) };
}

function describe(instruction: Instruction, line: number): StageInstruction {
  const text = (instruction.getArgumentsContent() ?? '').replace(/\s+/g, ' ').trim();
  const flags: Record<string, string | null> = {};
  const withFlags = instruction as Instruction & { getFlags?: () => { getName(): string; getValue(): string | null }[] };
  for (const flag of withFlags.getFlags?.() ?? []) flags[flag.getName()] = flag.getValue();
  return {
    keyword: instruction.getKeyword(),
    line,
    text,
    args: instruction.getArguments().map((argument) => argument.getValue()),
    flags,
    json: execForm(text),
  };
}

/** `["a", "b"]` as Docker reads it (a JSON array of strings), else null (shell form). */
export function execForm(text: string): string[] | null {
  if (!text.startsWith('[')) return null;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : null;
  } catch {
    return null;
  }
}

/** ENV and friends accumulate through the stage; the last CMD/ENTRYPOINT/HEALTHCHECK/USER wins, as in Docker. */
function imageConfig(stage: Stage, env: Record<string, string>): ImageConfig {
  const config: ImageConfig = {
    stage,
    env,
    workdir: '/',
    user: null,
    entrypoint: null,
    cmd: null,
    healthcheck: null,
    expose: [],
    stopSignal: null,
  };
  for (const instruction of stage.instructions) {
    switch (instruction.keyword) {
      case 'WORKDIR':
        config.workdir = instruction.text.startsWith('/') ? instruction.text : `${config.workdir}/${instruction.text}`;
        break;
      case 'USER':
        config.user = instruction.text;
        break;
      case 'ENTRYPOINT':
        config.entrypoint = instruction.json ?? ['/bin/sh', '-c', instruction.text];
        break;
      case 'CMD':
        config.cmd = instruction.json ?? ['/bin/sh', '-c', instruction.text];
        break;
      case 'HEALTHCHECK': {
        const command = instruction.text.replace(/^CMD\s+/i, '');
        config.healthcheck =
          instruction.text.toUpperCase() === 'NONE'
            ? null
            : { cmd: execForm(command) ?? ['/bin/sh', '-c', command], flags: instruction.flags };
        break;
      }
      case 'EXPOSE':
        config.expose.push(...instruction.args);
        break;
      case 'STOPSIGNAL':
        config.stopSignal = instruction.text;
        break;
    }
  }
  return config;
}
