import { readFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';

/**
 * Ports free right now on `host`, for a server started a moment later (a test's simulator, an embedded
 * PostgreSQL). Not port 0: the kernel hands those out of its ephemeral range (32768-60999 here), where every
 * outgoing connection takes its source port too, so a port let go is soon some connection's, and the server then
 * fails with EADDRINUSE (a CI run of test/boot lost its PostgreSQL port so, while another suite opened 1,300
 * connections). Chosen at random outside that range instead, at or above 10000 (below it sit the well-known
 * services: 5432, 6379, 3306, ...), and held open together so that the n ports are distinct.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const candidates = portsOutsideEphemeralRange();
  const servers: Server[] = [];
  try {
    for (let attempts = 0; servers.length < n; attempts++) {
      if (attempts >= n + 1000) throw new Error(`no ${n} free ports on ${host} outside the ephemeral range`);
      const port = candidates[Math.floor(Math.random() * candidates.length)]!;
      const server = await listening(port, host);
      if (server) servers.push(server);
    }
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

function listening(port: number, host: string): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(null));
    server.listen({ port, host, exclusive: true }, () => resolve(server));
  });
}

const LOWEST = 10_000;

function portsOutsideEphemeralRange(): number[] {
  const [low, high] = ephemeralRange();
  const ports: number[] = [];
  for (let port = LOWEST; port <= 65_535; port++) if (port < low || port > high) ports.push(port);
  return ports.length > 0 ? ports : Array.from({ length: 65_536 - LOWEST }, (_, i) => LOWEST + i);
}

/** The kernel's ephemeral port range (Linux), or the common default when it cannot be read. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // not Linux: fall through
  }
  return [32_768, 60_999];
}
