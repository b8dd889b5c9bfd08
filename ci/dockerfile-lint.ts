/**
 * Lints the Dockerfile without a Docker engine: `node -r ts-node/register/transpile-only ci/dockerfile-lint.ts`.
 *
 * 1. dockerfile-utils (the validator of the Dockerfile language server used by editors; it parses like BuildKit and
 *    works offline): every diagnostic, warning or error, fails.
 * 2. The rules this image has to keep (a few of hadolint's, plus the project's contract): pinned base images,
 *    COPY --from an earlier stage, exec-form CMD/ENTRYPOINT/HEALTHCHECK, apt hygiene, `npm ci` with production
 *    dependencies only in the runtime, a non-root numeric USER, EXPOSE 3000, STOPSIGNAL SIGTERM, a HEALTHCHECK on
 *    /health without curl, ENV defaults equal to the service's own (src/config/app-config.ts), no secrets in ENV,
 *    CMD equal to `npm start`'s command, and a .dockerignore that sends what the build copies and nothing private.
 * Exits 1 with every problem listed.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { validate, ValidationSeverity } from 'dockerfile-utils';
import { loadConfig } from '../src/config/app-config';
import { readDockerfile } from './dockerfile';
import { contextFiles, readDockerignore } from './dockerignore';

/** SPEC section 8: the settings the image sets to their defaults. DATABASE_URL stays unset on purpose. */
const SPEC_SETTINGS = [
  'PORT',
  'METER_URL_TEMPLATE',
  'POLL_INTERVAL_SECONDS',
  'POLL_TIMEOUT_MS',
  'POLL_CONCURRENCY',
  'POLLING_ENABLED',
  'METER_ALLOWED_NETWORKS',
  'STATS_TIMEZONE',
];
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE|CREDENTIAL/i;

const problems: string[] = [];
const problem = (line: number | null, message: string): void => {
  problems.push(line === null ? message : `Dockerfile:${line}: ${message}`);
};

const parsed = readDockerfile('Dockerfile');
const { stages, final } = parsed;

// 1. dockerfile-utils, strict: its optional checks raised to warnings, and warnings fail too.
const diagnostics = validate(parsed.content, {
  deprecatedMaintainer: ValidationSeverity.WARNING,
  directiveCasing: ValidationSeverity.WARNING,
  emptyContinuationLine: ValidationSeverity.WARNING,
  instructionCasing: ValidationSeverity.WARNING,
  instructionCmdMultiple: ValidationSeverity.WARNING,
  instructionEntrypointMultiple: ValidationSeverity.WARNING,
  instructionHealthcheckMultiple: ValidationSeverity.WARNING,
  instructionJSONInSingleQuotes: ValidationSeverity.WARNING,
  instructionWorkdirRelative: ValidationSeverity.WARNING,
});
for (const diagnostic of diagnostics) {
  const severity = diagnostic.severity === 1 ? 'error' : 'warning';
  problem(diagnostic.range.start.line + 1, `[dockerfile-utils ${severity}] ${diagnostic.message}`);
}

// 2. Base images and stages.
const stageNames = new Set<string>();
for (const stage of stages) {
  const image = stage.image;
  if (!stageNames.has(image)) {
    const [, tag] = /^[^@]+?(?::([^:/@]+))?(?:@sha256:[a-f0-9]{64})?$/.exec(image) ?? [];
    if (!tag && !image.includes('@sha256:')) problem(stage.line, `base image "${image}" has no tag: pin one`);
    if (tag === 'latest') problem(stage.line, `base image "${image}" uses "latest": pin a version`);
  }
  for (const instruction of stage.instructions) {
    const from = instruction.flags.from;
    if (instruction.keyword === 'COPY' && from != null && !stageNames.has(from)) {
      problem(instruction.line, `COPY --from=${from} names no earlier stage (${[...stageNames].join(', ')})`);
    }
    if (instruction.keyword === 'RUN') checkRun(instruction.line, instruction.text);
    if (instruction.keyword === 'ADD') problem(instruction.line, 'use COPY rather than ADD (no URLs, no unpacking)');
  }
  if (stage.name) stageNames.add(stage.name);
}

function checkRun(line: number, text: string): void {
  if (/\bapt-get\s+(?:[^&;|]*\s)?install\b/.test(text)) {
    if (!/\binstall\b[^&;|]*\s-(?:y|-yes)\b/.test(text)) problem(line, 'apt-get install without -y');
    if (!/--no-install-recommends/.test(text)) problem(line, 'apt-get install without --no-install-recommends');
    if (!/rm -rf \/var\/lib\/apt\/lists/.test(text)) problem(line, 'apt lists not removed in the same RUN');
  }
  if (/\bapt\s+install\b/.test(text)) problem(line, 'use apt-get, not apt, in scripts');
  if (/\bnpm\s+install\b/.test(text)) problem(line, 'use npm ci (the lock file), not npm install');
  if (/\b(?:curl|wget)\b[^|]*\|\s*(?:ba)?sh\b/.test(text)) problem(line, 'piping a download into a shell');
  if (/\bsudo\b/.test(text)) problem(line, 'sudo in a Dockerfile');
}

// 3. The runtime image.
const finalLine = final.stage.line;
const runtimeCopies = final.stage.instructions.filter((instruction) => instruction.keyword === 'COPY');
const modulesCopy = runtimeCopies.find((copy) => copy.args.some((arg) => /node_modules\/?$/.test(arg)));
const modulesStage = stages.find((stage) => stage.name === modulesCopy?.flags.from);
if (!modulesCopy || !modulesStage) {
  problem(finalLine, 'the runtime stage must COPY node_modules from a dependencies stage');
} else if (!modulesStage.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b[^;&]*--omit=dev/.test(i.text))) {
  problem(modulesStage.line, `stage "${modulesStage.name}" (the runtime's node_modules) must run npm ci --omit=dev`);
}
if (final.stage.instructions.some((i) => i.keyword === 'RUN' && /\bnpm (?:ci|run build)\b/.test(i.text))) {
  problem(finalLine, 'the runtime stage installs or builds: do it in an earlier stage and copy the result');
}

if (!final.user) {
  problem(finalLine, 'the runtime stage sets no USER: it would run as root');
} else {
  const [user, group] = final.user.split(':');
  if (user === 'root' || user === '0' || group === '0' || group === 'root') problem(null, `USER ${final.user} is root`);
  if (!/^\d+$/.test(user)) problem(null, `USER ${final.user}: give a numeric uid (runAsNonRoot can check it)`);
}
if (!final.expose.includes('3000') && !final.expose.includes('3000/tcp')) problem(finalLine, 'EXPOSE 3000 missing');
if (final.stopSignal !== 'SIGTERM') problem(finalLine, `STOPSIGNAL should be SIGTERM, is ${final.stopSignal}`);

const execFormOf = (keyword: string): void => {
  const instruction = final.stage.instructions.filter((i) => i.keyword === keyword).at(-1);
  if (instruction && !instruction.json) {
    problem(instruction.line, `${keyword} in shell form: signals would reach /bin/sh, not the program (exec form)`);
  }
};
execFormOf('CMD');
execFormOf('ENTRYPOINT');

const startScript = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts
  .start;
if (!final.cmd) {
  problem(finalLine, 'no CMD');
} else if (final.cmd.join(' ') !== startScript) {
  problem(null, `CMD ${JSON.stringify(final.cmd)} differs from npm start ("${startScript}")`);
}
if (final.entrypoint && !/\b(?:tini|dumb-init)$/.test(final.entrypoint[0])) {
  problem(null, `ENTRYPOINT ${JSON.stringify(final.entrypoint)}: expected an init (tini) or none`);
}

const health = final.healthcheck;
if (!health?.cmd) {
  problem(finalLine, 'no HEALTHCHECK');
} else {
  const command = health.cmd.join(' ');
  if (health.cmd[0] === '/bin/sh') problem(null, 'HEALTHCHECK in shell form: use exec form');
  if (/\b(?:curl|wget)\b/.test(command)) problem(null, 'HEALTHCHECK uses curl/wget, which slim images lack');
  if (!command.includes('/health')) problem(null, 'HEALTHCHECK does not ask /health');
  for (const flag of ['interval', 'timeout', 'start-period']) {
    if (!health.flags[flag]) problem(null, `HEALTHCHECK without --${flag}`);
  }
}

// 4. ENV: the contract's settings, set to the service's own defaults, and nothing secret.
for (const name of SPEC_SETTINGS) {
  if (!(name in final.env)) problem(null, `ENV does not set ${name} (SPEC section 8)`);
}
for (const name of Object.keys(final.env)) {
  if (name === 'DATABASE_URL') problem(null, 'ENV sets DATABASE_URL: it carries credentials and must come from outside');
  if (SECRET_NAME.test(name)) problem(null, `ENV sets ${name}: secrets never go into an image`);
}
try {
  const defaults = loadConfig({});
  const image = loadConfig(final.env);
  // The data directory may be spelled absolute in the image: compare where it lands under WORKDIR.
  const landsAt = (dir: string): string => posix.resolve(final.workdir, dir);
  if (landsAt(image.database.embeddedDir) !== landsAt(defaults.database.embeddedDir)) {
    problem(null, `EMBEDDED_PG_DIR ${image.database.embeddedDir} differs from the default ./data under WORKDIR`);
  }
  image.database.embeddedDir = defaults.database.embeddedDir;
  const differences = diff(defaults, image);
  for (const difference of differences) problem(null, `ENV changes a default: ${difference}`);
} catch (error) {
  problem(null, `the image's ENV does not pass the service's own validation: ${String(error)}`);
}

function diff(expected: unknown, actual: unknown, path = 'config'): string[] {
  if (typeof expected === 'object' && expected !== null && typeof actual === 'object' && actual !== null) {
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    return [...keys].flatMap((key) =>
      diff((expected as Record<string, unknown>)[key], (actual as Record<string, unknown>)[key], `${path}.${key}`),
    );
  }
  if (Object.is(expected, actual)) return [];
  // A key or a URL with a password must not reach CI's log.
  const show = (value: unknown): string => (/key|url|secret|password|token/i.test(path) ? '(not shown)' : JSON.stringify(value));
  return [`${path} is ${show(actual)}, default ${show(expected)}`];
}

// 5. The build context: what the build copies is there, what is private is not.
const patterns = readDockerignore('.dockerignore');
if (patterns.length === 0) problem(null, '.dockerignore missing or empty: node_modules, data and .env would be sent');
const context = contextFiles('.', patterns);
for (const stage of stages) {
  for (const copy of stage.instructions) {
    if (copy.keyword !== 'COPY' || copy.flags.from != null) continue;
    for (const source of copy.args.slice(0, -1)) {
      const clean = source.replace(/^\.\//, '').replace(/\/$/, '');
      if (!context.some((file) => file === clean || file.startsWith(`${clean}/`))) {
        problem(copy.line, `COPY ${source}: not in the build context (missing, or left out by .dockerignore)`);
      }
    }
  }
}
const privatePaths = [/^\.env$/, /^\.env\./, /^data\//, /^node_modules\//, /^\.git\//, /^dist\//, /\.pem$/, /\.key$/];
for (const file of context) {
  if (privatePaths.some((pattern) => pattern.test(file) && file !== '.env.example')) {
    problem(null, `.dockerignore lets ${file} into the build context`);
  }
}

if (problems.length > 0) {
  console.error(`Dockerfile lint: ${problems.length} problem(s)`);
  for (const line of problems) console.error(`  ${line}`);
  process.exit(1);
}
console.log(
  `Dockerfile lint: OK (dockerfile-utils: no diagnostics; ${stages.length} stages; runtime ` +
    `${final.stage.image} as ${final.user}; build context ${context.length} files)`,
);
