import { HttpService } from '@nestjs/axios';
import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AxiosError } from 'axios';
import { Agent } from 'node:http';
import { MeterFailureKind } from '../common/errors';
import { AddressPolicy, meterUrl } from '../common/network';
import { AppConfig } from '../config/app-config';
import { PollTarget } from '../meters/meters.repository';
import { NewReading } from '../readings/readings.repository';
import { MAX_METER_BODY_BYTES, parseMeterPayload } from './meter-payload';

export type PollResult =
  | { ok: true; meterId: string; attemptedAt: Date; durationMs: number; reading: NewReading }
  | { ok: false; meterId: string; attemptedAt: Date; durationMs: number; kind: MeterFailureKind; message: string };

/**
 * Reads one meter: one GET with a hard deadline over connect, headers and body, a body cap, no redirects and no
 * proxy. Every outcome is a PollResult; it never throws. The meter's body is never passed on, only a verdict.
 */
@Injectable()
export class MeterClient {
  private readonly timeoutMs: number;
  private readonly urlTemplate: string;
  /** Keep-alive: a meter read every interval reuses its connection instead of a new handshake each time. */
  private readonly agent: Agent;

  constructor(
    private readonly http: HttpService,
    @Inject(AddressPolicy) private readonly addressPolicy: AddressPolicy,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    const polling = config.get('polling', { infer: true });
    this.timeoutMs = polling.timeoutMs;
    this.urlTemplate = polling.urlTemplate;
    this.agent = new Agent({
      keepAlive: true,
      // Idle sockets are kept one interval and a bit, so that the next poll finds its connection open.
      timeout: polling.intervalSeconds * 1000 + 5000,
      maxSockets: polling.concurrency,
      maxFreeSockets: polling.concurrency,
      scheduling: 'lifo',
    });
  }

  async read(target: PollTarget, signal?: AbortSignal): Promise<PollResult> {
    const attemptedAt = new Date();
    const started = performance.now();
    const fail = (kind: MeterFailureKind, message: string): PollResult => ({
      ok: false,
      meterId: target.meterId,
      attemptedAt,
      durationMs: performance.now() - started,
      kind,
      message: `${kind}: ${message}`,
    });

    // Checked again at request time: the allowed networks may have narrowed since the meter was registered.
    const verdict = this.addressPolicy.check(target.address);
    if (!verdict.allowed) return fail('not-allowed', verdict.reason);

    const deadline = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await this.http.axiosRef.get<string>(meterUrl(this.urlTemplate, verdict.address, target.port), {
        httpAgent: this.agent,
        proxy: false,
        maxRedirects: 0,
        maxContentLength: MAX_METER_BODY_BYTES,
        responseType: 'text',
        transformResponse: (data: string) => data,
        validateStatus: () => true,
        headers: { Accept: 'application/json' },
        signal: signal ? AbortSignal.any([deadline, signal]) : deadline,
      });
      const takenAt = new Date();
      if (response.status >= 300 && response.status < 400) {
        return fail('redirect', `meter answered ${response.status}; redirects are not followed`);
      }
      if (response.status < 200 || response.status >= 300) {
        return fail('http-status', `meter answered HTTP ${response.status}`);
      }
      const verdictOfBody = parseMeterPayload(String(response.data ?? ''), target.meterId);
      if (!verdictOfBody.ok) return fail(verdictOfBody.kind, verdictOfBody.reason);
      return {
        ok: true,
        meterId: target.meterId,
        attemptedAt,
        durationMs: performance.now() - started,
        reading: {
          meterId: target.meterId,
          takenAt,
          currentA: verdictOfBody.currentA,
          energyKwh: verdictOfBody.energyKwh,
        },
      };
    } catch (error) {
      if (deadline.aborted) return fail('timeout', `no complete answer within ${this.timeoutMs} ms`);
      if (signal?.aborted) return fail('network', 'abandoned at shutdown');
      return fail(...classifyTransportError(error));
    }
  }

  onModuleDestroy(): void {
    this.agent.destroy();
  }
}

function classifyTransportError(error: unknown): [MeterFailureKind, string] {
  const code = (error as AxiosError | undefined)?.code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ECONNREFUSED') return ['refused', 'connection refused'];
  if (code === 'ERR_BAD_RESPONSE' && /maxContentLength/.test(message)) {
    return ['too-large', `body larger than ${MAX_METER_BODY_BYTES} bytes`];
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(message)) {
    return ['network', 'connection reset by the meter'];
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return ['network', 'host unreachable'];
  if (code.startsWith('HPE_') || /parse/i.test(message)) return ['bad-payload', 'malformed HTTP response'];
  return ['network', code || 'transport error'];
}
