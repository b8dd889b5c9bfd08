import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The service's Prometheus metrics, one registry per application (tests run several apps in one process). */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly polls = new Counter({
    name: 'meter_polls_total',
    help: 'Meter reads by outcome (ok, or the failure kind)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly pollDuration = new Histogram({
    name: 'meter_poll_duration_seconds',
    help: 'Duration of one meter read, connect to parsed answer',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly cycleDuration = new Histogram({
    name: 'polling_cycle_duration_seconds',
    help: 'Duration of one polling cycle over every due meter',
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 15, 30, 45, 60, 120, 300],
    registers: [this.registry],
  });

  readonly skippedTicks = new Counter({
    name: 'polling_skipped_ticks_total',
    help: 'Scheduler ticks skipped because the previous cycle was still running',
    registers: [this.registry],
  });

  readonly readingsWritten = new Counter({
    name: 'readings_written_total',
    help: 'Readings stored in the database',
    registers: [this.registry],
  });

  readonly writeFailures = new Counter({
    name: 'reading_write_failures_total',
    help: 'Batch writes that failed (their results stay buffered and are retried)',
    registers: [this.registry],
  });

  readonly buffered = new Gauge({
    name: 'reading_write_buffer_results',
    help: 'Poll results waiting to be written',
    registers: [this.registry],
  });

  readonly dropped = new Counter({
    name: 'reading_write_buffer_dropped_total',
    help: 'Poll results dropped, oldest first, because the write buffer was full',
    registers: [this.registry],
  });

  readonly metersByState = new Gauge({
    name: 'meters',
    help: 'Registered meters by health state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
