/** Reads a V8 .cpuprofile and answers where the samples fell: by function (self time) and by package/area. */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { REPO_ROOT } from './children';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  functions: ProfileLine[];
  areas: ProfileLine[];
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? url.slice('file://'.length) : url;
  if (path === '') return '';
  if (path.startsWith('node:')) return path;
  // Sources transpiled ahead into the benchmark's work directory (compile.ts): named as in the repository.
  const transpiled = /\/js\/((?:src|bench|tools)\/.*)$/.exec(path);
  if (transpiled && !path.startsWith(REPO_ROOT)) return transpiled[1];
  return path.startsWith('/') ? relative(REPO_ROOT, path) : path;
}

/** node_modules/<package>, src/<dir>, node internals, or V8's own buckets ((garbage collector), (program), ...). */
function areaOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const path = shortUrl(url);
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1];
  if (path.startsWith('node:')) return 'node internals';
  const own = /^(src|bench|tools)\/([^/]+)/.exec(path);
  if (own) return `${own[1]}/${own[2]}`;
  return path;
}

function top(map: Map<string, number>, totalMs: number, limit: number): ProfileLine[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, ms]) => ({ name, ms, share: totalMs > 0 ? ms / totalMs : 0 }));
}

export function summariseProfile(file: string, limit = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  let totalMs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const ms = us / 1000;
    if (node.callFrame.functionName === '(idle)') continue;
    totalMs += ms;
    const { functionName, lineNumber, url } = node.callFrame;
    const where = url === '' ? '' : ` ${shortUrl(url)}:${lineNumber + 1}`;
    const name = `${functionName || '(anonymous)'}${where}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
    const area = areaOf(node);
    areas.set(area, (areas.get(area) ?? 0) + ms);
  }
  return { totalMs, functions: top(functions, totalMs, limit), areas: top(areas, totalMs, limit) };
}
