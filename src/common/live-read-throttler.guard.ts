import { ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerException, ThrottlerGuard, ThrottlerLimitDetail, ThrottlerModuleOptions } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { AppConfig } from '../config/app-config';
import { requestAccess } from './access-control';
import { METER_ID_PATTERN } from './meter-id';

const METER_TRACKER = 'meter:';

/**
 * The limits on live reads, as @nestjs/throttler options: one sliding window per meter (protects the meter) and
 * one per client address (protects the service and the network from one client). A limit of 0 is no limit.
 */
export function liveReadThrottlerOptions(limits: AppConfig['liveReadLimits']): ThrottlerModuleOptions {
  const ttl = limits.windowSeconds * 1000;
  const throttlers = [
    { name: 'meter', limit: limits.perMeter, getTracker: (req: Record<string, unknown>) => meterTracker(req as unknown as Request) },
    { name: 'client', limit: limits.perClient },
  ];
  return {
    // blockDuration 0: a sliding window; a refused read is not counted, and Retry-After says when a slot frees.
    throttlers: throttlers.filter((throttler) => throttler.limit > 0).map((throttler) => ({ ...throttler, ttl, blockDuration: 0 })),
    setHeaders: false,
  };
}

/**
 * Rate-limits live reads (GET /meters/{id}/data without dates) only; every other route passes. A live read that
 * arrives while another live read of the same meter is being answered shares that read (the service sends the
 * meter one request for all of them, SPEC 3), so it costs the meter nothing and is not counted, provided the read
 * it joins was itself let through. 429 carries Retry-After in seconds.
 */
@Injectable()
export class LiveReadThrottlerGuard extends ThrottlerGuard {
  private readonly reads = new Map<string, { admitted: Promise<boolean>; open: number }>();

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<Request>();
    if (this.throttlers.length === 0 || requestAccess(request) !== 'live-read') return true;
    const meterId = request.params?.meterId;
    // Not a meter id: the pipe answers 400 and nothing reaches the meter.
    if (typeof meterId !== 'string' || !METER_ID_PATTERN.test(meterId)) return true;

    // Decided synchronously, before any await, so that of simultaneous reads exactly one leads.
    const joined = this.reads.get(meterId);
    const read = joined ?? { admitted: super.canActivate(context), open: 0 };
    if (!joined) this.reads.set(meterId, read);
    read.open++;
    http.getResponse<Response>().once('close', () => {
      if (--read.open === 0 && this.reads.get(meterId) === read) this.reads.delete(meterId);
    });
    if (!joined) return read.admitted;
    // The read joined was refused: this one is counted on its own.
    return read.admitted.then(
      (admitted) => admitted || super.canActivate(context),
      () => super.canActivate(context),
    );
  }

  protected override async throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const retryAfter = Math.max(1, detail.timeToBlockExpire);
    context.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(retryAfter));
    const window = `${detail.ttl / 1000} s`;
    const subject = detail.tracker.startsWith(METER_TRACKER)
      ? `of meter "${detail.tracker.slice(METER_TRACKER.length)}"`
      : 'from this client';
    throw new ThrottlerException(
      `too many live reads ${subject}: at most ${detail.limit} every ${window}; retry in ${retryAfter} s`,
    );
  }
}

function meterTracker(req: Request): string {
  return `${METER_TRACKER}${String(req.params?.meterId)}`;
}
