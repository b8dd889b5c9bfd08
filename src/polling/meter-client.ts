import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Agent, Client, Dispatcher } from 'undici';
import { MeterFailureKind } from '../common/errors';
import { AddressPolicy, AddressVerdict, meterUrl } from '../common/network';
import { AppConfig } from '../config/app-config';
import { PollTarget } from '../meters/meters.repository';
import { MeterSource } from '../common/meter-source';
import { NewReading } from '../readings/readings.repository';
import { decodeMeterBody, MAX_METER_BODY_BYTES, parseMeterPayload } from './meter-payload';
import { errorCode } from '../common/error-code';

/** `source`: the address and port the meter was read at (its health is recorded only while it is still there). */
export type PollResult =
  | { ok: true; meterId: string; attemptedAt: Date; durationMs: number; reading: NewReading; source?: MeterSource }
  | {
      ok: false;
      meterId: string;
      attemptedAt: Date;
      durationMs: number;
      kind: MeterFailureKind;
      message: string;
      source?: MeterSource;
    };

export type FetchOutcome =
  | { ok: true; body: string; takenAt: Date }
  | { ok: false; kind: MeterFailureKind; message: string };

class BodyTooLargeError extends Error {}

/**
 * The errors this client drops a connection with, made once with their stack already text. Undici destroys the
 * socket with the error it is given (or a new one of its own when given none) and Node reads that error's stack;
 * with source maps loaded (ts-node, Jest) formatting a fresh one cost ~1-3 ms here, so a hundred hung meters reaching
 * their deadline in the same tick held the event loop for about half a second.
 */
function preformatted(name: string, message: string): Error {
  const error = Object.assign(new Error(message), { name });
  void error.stack;
  return error;
}
const DEADLINE_EXCEEDED = preformatted('TimeoutError', 'meter deadline exceeded');
const BODY_DROPPED = preformatted('AbortError', 'meter body dropped: larger than the cap');

/**
 * Reads one meter: one GET with a hard deadline over connect, headers and body, a body cap, no redirects and no
 * proxy. Every outcome is a PollResult; it never throws. The meter's body is never passed on, only a verdict.
 *
 * Transport: undici with one keep-alive connection per meter origin (a Client: a Pool's preallocated queue costs
 * ~20 KB more per origin, 300 MB at 15,000 origins), so that a meter read every interval reuses its connection.
 * Measured here (5,000 meters, same simulator): ~10,000 polls/s at ~0.1 CPU-s per 1,000 against
 * ~2,500/s at ~0.4 for axios with keep-alive (FINDINGS; `npm run bench:clients`). Open files are bounded
 * (20,000 here): past POLL_MAX_KEPT_ALIVE origins, meters are read on a connection closed after each answer.
 */
@Injectable()
export class MeterClient implements OnApplicationShutdown {
  private readonly logger = new Logger(MeterClient.name);
  private readonly timeoutMs: number;
  private readonly urlTemplate: string;
  private readonly keepAliveMs: number;
  private readonly maxKeptAlive: number;
  private readonly pools = new Map<string, Client>();
  /** For origins beyond the kept-alive budget: each request on its own connection, closed after the answer. */
  private readonly oneShot: Agent;
  /**
   * Requests in flight with the caller's signal (the shutdown signal): one listener per caller signal aborts them,
   * rather than a listener per request on that long-lived signal.
   */
  private readonly inFlight = new Set<{ controller: AbortController; signal: AbortSignal }>();
  private readonly watchedSignals = new WeakSet<AbortSignal>();
  /** The address policy is fixed at boot: its verdict per address is too (BlockList.check is costly per poll). */
  private readonly verdicts = new Map<string, AddressVerdict>();
  private budgetWarned = false;

  constructor(
    @Inject(AddressPolicy) private readonly addressPolicy: AddressPolicy,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    const polling = config.get('polling', { infer: true });
    this.timeoutMs = polling.timeoutMs;
    this.urlTemplate = polling.urlTemplate;
    this.maxKeptAlive = polling.maxKeptAlive;
    // Idle connections live one interval and a bit, so that the next poll finds its connection open.
    this.keepAliveMs = polling.intervalSeconds * 1000 + 5000;
    // connections: 1 makes the Agent build a Client per origin, not a Pool (see above), for every one-shot read.
    this.oneShot = new Agent({ ...this.dispatcherOptions(), pipelining: 0, connections: 1 });
  }

  async read(target: PollTarget, signal?: AbortSignal): Promise<PollResult> {
    const attemptedAt = new Date();
    const started = performance.now();
    const answer = await this.fetchBody(target.address, target.port, signal);
    const durationMs = () => performance.now() - started;
    const source = { address: target.address, port: target.port };
    const base = { meterId: target.meterId, attemptedAt, source };
    if (!answer.ok) return { ...base, ...answer, durationMs: durationMs() };
    const payload = parseMeterPayload(answer.body, target.meterId);
    if (!payload.ok) {
      return { ...base, ok: false, kind: payload.kind, message: `${payload.kind}: ${payload.reason}`, durationMs: durationMs() };
    }
    return {
      ...base,
      ok: true,
      durationMs: durationMs(),
      reading: {
        meterId: target.meterId,
        takenAt: answer.takenAt,
        currentA: payload.currentA,
        energyKwh: payload.energyKwh,
        source,
      },
    };
  }

  /**
   * One GET of a meter's URL: the body of a 2xx answer of at most 64 KiB within the deadline, or why not.
   * `takenAt` is the service's clock when the answer was complete.
   */
  async fetchBody(
    address: string,
    port: number,
    signal?: AbortSignal,
    { keepAlive = true }: { keepAlive?: boolean } = {},
  ): Promise<FetchOutcome> {
    const fail = (kind: MeterFailureKind, message: string): FetchOutcome => ({
      ok: false,
      kind,
      message: `${kind}: ${message}`,
    });
    // Checked again at request time: the allowed networks may have narrowed since the meter was registered.
    const verdict = this.verdictFor(address);
    if (!verdict.allowed) return fail('not-allowed', verdict.reason);

    const url = new URL(meterUrl(this.urlTemplate, verdict.address, port));
    // One controller, its timer cleared at the end. Not AbortSignal.timeout + AbortSignal.any: on Node 20 every
    // any() leaves a WeakRef in the long-lived shutdown signal that is never removed (~70 bytes a poll, GBs a day
    // at 56,001 meters a minute), and both cost more CPU than the poll's own HTTP work.
    const deadline = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      deadline.abort(DEADLINE_EXCEEDED);
    }, this.timeoutMs);
    const entry = signal ? { controller: deadline, signal } : undefined;
    if (entry) {
      if (entry.signal.aborted) deadline.abort();
      this.watch(entry.signal);
      this.inFlight.add(entry);
    }
    try {
      const { dispatcher, reset } = keepAlive ? this.dispatcherFor(url.origin) : { dispatcher: this.oneShot, reset: true };
      const response = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'GET',
        headers: { accept: 'application/json' },
        reset,
        signal: deadline.signal,
      });
      if (response.statusCode >= 300 && response.statusCode < 400) {
        await discard(response.body);
        return fail('redirect', `meter answered ${response.statusCode}; redirects are not followed`);
      }
      if (response.statusCode < 200 || response.statusCode >= 300) {
        await discard(response.body);
        return fail('http-status', `meter answered HTTP ${response.statusCode}`);
      }
      // A declared length over the cap is refused before a byte of the body is read.
      const declared = Number(response.headers['content-length']);
      if (declared > MAX_METER_BODY_BYTES) {
        response.body.destroy(BODY_DROPPED);
        throw new BodyTooLargeError();
      }
      const body = decodeMeterBody(await readCapped(response.body, MAX_METER_BODY_BYTES));
      if (body === null) return fail('bad-payload', 'body is not valid UTF-8');
      return { ok: true, body, takenAt: new Date() };
    } catch (error) {
      if (timedOut) return fail('timeout', `no complete answer within ${this.timeoutMs} ms`);
      if (signal?.aborted) return fail('network', 'abandoned at shutdown');
      return fail(...classifyTransportError(error));
    } finally {
      clearTimeout(timer);
      if (entry) this.inFlight.delete(entry);
    }
  }

  private watch(signal: AbortSignal): void {
    if (this.watchedSignals.has(signal)) return;
    this.watchedSignals.add(signal);
    signal.addEventListener(
      'abort',
      () => {
        for (const entry of this.inFlight) if (entry.signal === signal) entry.controller.abort();
      },
      { once: true },
    );
  }

  private verdictFor(address: string): AddressVerdict {
    let verdict = this.verdicts.get(address);
    if (!verdict) {
      verdict = this.addressPolicy.check(address);
      // Bounded: addresses come from the registry, but a long life of re-addressed meters should not grow it forever.
      if (this.verdicts.size >= 200_000) this.verdicts.clear();
      this.verdicts.set(address, verdict);
    }
    return verdict;
  }

  private dispatcherFor(origin: string): { dispatcher: Dispatcher; reset: boolean } {
    const pool = this.pools.get(origin);
    if (pool) return { dispatcher: pool, reset: false };
    if (this.pools.size >= this.maxKeptAlive) {
      if (!this.budgetWarned) {
        this.budgetWarned = true;
        this.logger.warn(
          `more than ${this.maxKeptAlive} meter origins (POLL_MAX_KEPT_ALIVE): the others are read on a new ` +
            'connection each time',
        );
      }
      return { dispatcher: this.oneShot, reset: true };
    }
    const created = new Client(origin, this.dispatcherOptions());
    this.pools.set(origin, created);
    return { dispatcher: created, reset: false };
  }

  private dispatcherOptions(): Client.Options {
    return {
      connect: { timeout: this.timeoutMs },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      keepAliveTimeout: this.keepAliveMs,
      keepAliveMaxTimeout: this.keepAliveMs,
      // A meter's answer is one small JSON object: anything with huge headers is not a meter.
      maxHeaderSize: 16 * 1024,
    };
  }

  get keptAliveOrigins(): number {
    return this.pools.size;
  }

  // Not onModuleDestroy: that runs before PollingService.beforeApplicationShutdown, whose polls in flight need
  // these connections for their grace period (SHUTDOWN_GRACE_MS).
  async onApplicationShutdown(): Promise<void> {
    const dispatchers: Dispatcher[] = [...this.pools.values(), this.oneShot];
    this.pools.clear();
    await Promise.all(dispatchers.map((d) => d.destroy().catch(() => undefined)));
  }
}

/**
 * Lets the connection be reused after a refused answer when its body is small; a larger one is not read, the
 * connection is dropped instead (a 302 with a 100 MB body costs nothing).
 */
async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  await body.dump({ limit: 4096 }).catch(() => undefined);
}

/** Reads a body, giving up (and dropping the connection) past `limit` bytes. */
async function readCapped(body: AsyncIterable<Buffer> & { destroy(error?: Error): unknown }, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy(BODY_DROPPED);
      throw new BodyTooLargeError();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function classifyTransportError(error: unknown): [MeterFailureKind, string] {
  if (error instanceof BodyTooLargeError) return ['too-large', `body larger than ${MAX_METER_BODY_BYTES} bytes`];
  const code = errorCode(error);
  if (code === 'ECONNREFUSED') return ['refused', 'connection refused'];
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return ['timeout', 'the meter stopped answering within the deadline'];
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') {
    return ['network', 'connection closed by the meter'];
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return ['network', 'host unreachable'];
  if (code === 'UND_ERR_HEADERS_OVERFLOW') return ['bad-payload', 'response headers too large'];
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    return ['bad-payload', 'malformed HTTP response'];
  }
  return ['network', code || 'transport error'];
}

