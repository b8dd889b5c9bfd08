import { createServer, connect, Server, Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a server (here: PostgreSQL), that a test can cut and restore. Cut is a
 * database gone away: the listening socket is closed (new connections are refused, ECONNREFUSED) and every open
 * connection is reset on both sides. Restore listens again on the same port. Works the same for the embedded
 * PostgreSQL and for a server, and for an app in the test's process or a child process.
 */
export interface TcpProxy {
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlThrough(url: string): string;
  readonly isUp: boolean;
  /** Connections accepted since start, and connections reset by cuts. */
  readonly stats: { accepted: number; reset: number };
  cut(): Promise<void>;
  restore(): Promise<void>;
  /**
   * A database that hangs instead of refusing (a stopped process, a black-holed network): connections are accepted
   * and nothing is forwarded either way until resume(), which delivers what was held.
   */
  hang(): void;
  resume(): void;
  close(): Promise<void>;
}

/**
 * The proxy listens on a port below the kernel's ephemeral range (32768-60999 here), so that no outgoing connection
 * can take the port while the proxy is cut and restore() can always listen on it again.
 */
const PORT_RANGE = { from: 21_000, to: 32_000 };

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const stats = { accepted: 0, reset: 0 };
  let server: Server | null = null;

  let hanging = false;
  const held: Socket[] = [];

  const forward = (client: Socket): void => {
    const upstream = connect({ host: target.host, port: target.port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  };

  const onConnection = (client: Socket): void => {
    stats.accepted++;
    if (hanging) {
      client.pause();
      client.on('error', () => client.destroy());
      held.push(client);
      return;
    }
    forward(client);
  };

  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const candidate = createServer(onConnection);
      candidate.once('error', reject);
      candidate.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
        candidate.off('error', reject);
        resolve(candidate);
      });
    });

  let port = 0;
  for (let attempt = 0; server === null; attempt++) {
    const candidate = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from));
    try {
      server = await listen(candidate);
      port = candidate;
    } catch (error) {
      if (attempt >= 50) throw error;
    }
  }

  const closeServer = async () => {
    const closing = server;
    server = null;
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };

  const resetAll = () => {
    for (const pair of pairs) {
      pairs.delete(pair);
      stats.reset++;
      for (const socket of pair) {
        if (!socket.destroyed) socket.resetAndDestroy();
      }
    }
  };

  return {
    port,
    stats,
    get isUp() {
      return server !== null;
    },
    urlThrough(url: string): string {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    hang() {
      hanging = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    resume() {
      hanging = false;
      for (const [client, upstream] of pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
        upstream.resume();
      }
      for (const client of held.splice(0)) {
        if (client.destroyed) continue;
        forward(client);
        client.resume();
      }
    },
    async cut() {
      // Close first (nothing new gets in), then reset what is open. server.close() waits for open connections,
      // so its promise is awaited only after the reset.
      const closing = closeServer();
      resetAll();
      await closing;
    },
    async restore() {
      if (server) return;
      for (let attempt = 0; ; attempt++) {
        try {
          server = await listen(port);
          return;
        } catch (error) {
          // A socket of the cut connections may linger for a moment; anything longer is a real failure.
          if (attempt >= 20) throw error;
          await new Promise((wake) => setTimeout(wake, 100));
        }
      }
    },
    async close() {
      const closing = closeServer();
      resetAll();
      await closing;
    },
  };
}
