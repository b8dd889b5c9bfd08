import { bufferProblem, eventLoopProblem, fillPercent } from './health.indicators';

describe('readiness of the write buffer', () => {
  const now = Date.parse('2026-12-03T10:00:00Z');
  const windowMs = 125_000;
  const never = { lastDroppedAt: null };

  it('is ready below 80% of the capacity with nothing dropped', () => {
    expect(bufferProblem({ buffered: 0, ...never }, 1000, now, windowMs)).toBeNull();
    expect(bufferProblem({ buffered: 799, ...never }, 1000, now, windowMs)).toBeNull();
  });

  it('is not ready from 80% on, saying how full', () => {
    expect(bufferProblem({ buffered: 800, ...never }, 1000, now, windowMs)).toBe('buffer 80% full (not ready from 80%)');
    expect(bufferProblem({ buffered: 1000, ...never }, 1000, now, windowMs)).toBe('buffer 100% full (not ready from 80%)');
  });

  it('is not ready while drops are recent, however empty the buffer is now', () => {
    const lastDroppedAt = new Date(now - 30_000);
    expect(bufferProblem({ buffered: 0, lastDroppedAt }, 1000, now, windowMs)).toBe(
      'poll results were dropped 30 s ago (buffer full)',
    );
  });

  it('is ready again once the last drop is older than the window', () => {
    const lastDroppedAt = new Date(now - windowMs);
    expect(bufferProblem({ buffered: 10, lastDroppedAt }, 1000, now, windowMs)).toBeNull();
  });

  it('rounds the fill down to a tenth of a percent, so that 79.99% never shows as 80%', () => {
    expect(fillPercent(7999, 10_000)).toBe(79.9);
    expect(fillPercent(1, 3)).toBe(33.3);
  });
});

describe('liveness of the event loop', () => {
  it('is alive with the usual delay (the 20 ms sampling interval) and single long turns', () => {
    expect(eventLoopProblem({ p50: 20.1, p99: 25, max: 40 })).toBeNull();
    expect(eventLoopProblem({ p50: 20.5, p99: 1900, max: 4000 })).toBeNull();
  });

  it('is stuck when half of its turns wait longer than a second', () => {
    expect(eventLoopProblem({ p50: 1500, p99: 2000, max: 2100 })).toBe(
      'event loop blocked: median delay 1500 ms over the last 10 s',
    );
  });
});
