import fc from 'fast-check';
import { parsePlainDecimal, type Micro } from '../common/decimal';
import {
  classifyPoints,
  summarizePeriod,
  summarizeRanges,
  type CounterPoint,
  type CounterSummary,
  type PointKind,
} from './counter';

/** Whole kWh as points, to keep the hand-made histories readable. */
function kwh(...values: number[]): CounterPoint[] {
  return values.map((value) => ({ energy: BigInt(value) * 1_000_000n }));
}

function micro(text: string): Micro {
  const value = parsePlainDecimal(text);
  if (value === null) throw new Error(`bad test decimal ${text}`);
  return value;
}

function kinds(points: readonly CounterPoint[]): PointKind[] {
  return classifyPoints(points).map((point) => point.kind);
}

function totalOf(points: readonly CounterPoint[]): Micro {
  return classifyPoints(points).reduce((sum, point) => sum + point.step, 0n);
}

function between(from: number, to: number): (index: number) => boolean {
  return (index) => index >= from && index < to;
}

describe('classifyPoints on hand-made histories', () => {
  test('SPEC example: 44325, 44400, 12, 50 uses 75 + 12 + 38 = 125', () => {
    const points = kwh(44325, 44400, 12, 50);
    expect(classifyPoints(points)).toEqual([
      { kind: 'first', step: 0n },
      { kind: 'normal', step: 75_000_000n }, // 44400 - 44325
      { kind: 'reset', step: 12_000_000n }, // new meter from zero: its own value
      { kind: 'normal', step: 38_000_000n }, // 50 - 12
    ]);
    expect(totalOf(points)).toBe(125_000_000n);
  });

  test('a single dip that recovers is a misread: 100, 110, 20, 120 uses 10 + 0 + (120 - 110) = 20', () => {
    const points = kwh(100, 110, 20, 120);
    expect(classifyPoints(points)).toEqual([
      { kind: 'first', step: 0n },
      { kind: 'normal', step: 10_000_000n },
      { kind: 'misread', step: 0n },
      { kind: 'normal', step: 10_000_000n }, // counted from 110, the reading before the dip
    ]);
    expect(totalOf(points)).toBe(20_000_000n);
  });

  test('a dip in the newest reading is a reset until the next one comes: 100, 110, 20 uses 10 + 20 = 30', () => {
    const history = kwh(100, 110, 20);
    expect(kinds(history)).toEqual(['first', 'normal', 'reset']);
    expect(totalOf(history)).toBe(30_000_000n);

    // Appending 120 turns the dip into a misread: 10 + 0 + 10 = 20.
    const extended = [...history, ...kwh(120)];
    expect(kinds(extended)).toEqual(['first', 'normal', 'misread', 'normal']);
    expect(totalOf(extended)).toBe(20_000_000n);
  });

  test('two low readings in a row are a reset: 100, 110, 20, 30 uses 10 + 20 + 10 = 40', () => {
    const points = kwh(100, 110, 20, 30);
    expect(kinds(points)).toEqual(['first', 'normal', 'reset', 'normal']);
    expect(totalOf(points)).toBe(40_000_000n);
  });

  test('a dip followed by a reading still below the one before it is a reset: 100, 110, 20, 105 uses 10 + 20 + 85 = 115', () => {
    const points = kwh(100, 110, 20, 105);
    expect(kinds(points)).toEqual(['first', 'normal', 'reset', 'normal']);
    expect(totalOf(points)).toBe(115_000_000n);
  });

  test('recovering exactly to the reading before the dip is a misread: 100, 100, 50, 100 uses 0', () => {
    const points = kwh(100, 100, 50, 100);
    expect(kinds(points)).toEqual(['first', 'normal', 'misread', 'normal']);
    expect(totalOf(points)).toBe(0n);
  });

  test('equal readings are normal steps of zero', () => {
    expect(classifyPoints(kwh(7, 7, 7))).toEqual([
      { kind: 'first', step: 0n },
      { kind: 'normal', step: 0n },
      { kind: 'normal', step: 0n },
    ]);
  });

  test('a reset followed by a misread: 50, 10, 5, 60 uses 10 + 0 + (60 - 10) = 60', () => {
    // 10 is not a misread (5 after it is lower), so it is a reset; 5 dips below both neighbours and 60 >= 10.
    const points = kwh(50, 10, 5, 60);
    expect(kinds(points)).toEqual(['first', 'reset', 'misread', 'normal']);
    expect(totalOf(points)).toBe(60_000_000n);
  });

  test('a dip in the oldest reading cannot be a misread (no previous reading)', () => {
    expect(kinds(kwh(5, 100, 110))).toEqual(['first', 'normal', 'normal']);
  });

  test('a reading equal to a neighbour is not lower than both: 100, 110, 110, 120', () => {
    expect(kinds(kwh(100, 110, 110, 120))).toEqual(['first', 'normal', 'normal', 'normal']);
  });

  test('decimals are exact: 123400.123 -> 123456.789 is exactly 56.666', () => {
    const points = [{ energy: micro('123400.123') }, { energy: micro('123456.789') }];
    expect(classifyPoints(points)[1]).toEqual({ kind: 'normal', step: micro('56.666') });
  });

  test('sub-kWh steps add up without drift: ten steps of 0.1 are exactly 1', () => {
    const points = Array.from({ length: 11 }, (_, i) => ({ energy: micro('0.1') * BigInt(i) }));
    expect(totalOf(points)).toBe(micro('1'));
  });

  test('values beyond 2^53 micro stay exact', () => {
    const points = [{ energy: micro('99999999999998.999999') }, { energy: micro('99999999999999.999999') }];
    expect(totalOf(points)).toBe(micro('1'));
  });

  test('no points, one point', () => {
    expect(classifyPoints([])).toEqual([]);
    expect(classifyPoints(kwh(42))).toEqual([{ kind: 'first', step: 0n }]);
  });
});

describe('classifyPoints invariants', () => {
  // Small values make equal readings, dips and recoveries frequent.
  const histories = fc.array(fc.integer({ min: 0, max: 12 }).map((value) => ({ energy: BigInt(value) })), {
    maxLength: 40,
  });

  test('same length; steps never negative; first and misread add nothing', () => {
    fc.assert(
      fc.property(histories, (points) => {
        const counted = classifyPoints(points);
        expect(counted).toHaveLength(points.length);
        for (const point of counted) {
          expect(point.step >= 0n).toBe(true);
          if (point.kind === 'first' || point.kind === 'misread') expect(point.step).toBe(0n);
        }
      }),
    );
  });

  test('two consecutive readings are never both misreads', () => {
    fc.assert(
      fc.property(histories, (points) => {
        const counted = classifyPoints(points);
        for (let i = 1; i < counted.length; i++) {
          expect(counted[i - 1].kind === 'misread' && counted[i].kind === 'misread').toBe(false);
        }
      }),
    );
  });

  test('the oldest and the newest readings are never misreads', () => {
    fc.assert(
      fc.property(histories, (points) => {
        const counted = classifyPoints(points);
        if (counted.length > 0) {
          expect(counted[0].kind).toBe('first');
          expect(counted[counted.length - 1].kind).not.toBe('misread');
        }
      }),
    );
  });

  test('without drops, consumption is newest minus oldest', () => {
    const growing = fc
      .array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 30 })
      .map((steps) => {
        let energy = 0n;
        return steps.map((step) => ({ energy: (energy += step) }));
      });
    fc.assert(
      fc.property(growing, (points) => {
        expect(totalOf(points)).toBe(points[points.length - 1].energy - points[0].energy);
      }),
    );
  });
});

describe('summarizePeriod', () => {
  test('counts the steps, resets and misreads of the readings inside the period', () => {
    // 100, 110, 20(misread), 120, 130, 5(reset), 15; period = indexes 1..5
    // steps in period: 10 (110-100) + 0 (misread) + 10 (120-110) + 10 (130-120) + 5 (reset) = 35
    const points = kwh(100, 110, 20, 120, 130, 5, 15);
    expect(summarizePeriod(points, between(1, 6))).toEqual<CounterSummary>({
      consumption: 35_000_000n,
      resets: 1,
      misreads: 1,
      firstCounted: 1,
      lastCounted: 5,
      baselineIndex: 0,
      lastValid: 5,
    });
  });

  test('an empty period has zero consumption and no indexes', () => {
    expect(summarizePeriod(kwh(1, 2, 3), () => false)).toEqual<CounterSummary>({
      consumption: 0n,
      resets: 0,
      misreads: 0,
      firstCounted: null,
      lastCounted: null,
      baselineIndex: null,
      lastValid: null,
    });
  });

  test('a period holding the oldest reading starts from it: no baseline, its step is 0', () => {
    // 10, 15, 40 in period: 0 + 5 + 25 = 30
    expect(summarizePeriod(kwh(10, 15, 40), between(0, 3))).toMatchObject({
      consumption: 30_000_000n,
      firstCounted: 0,
      baselineIndex: null,
    });
  });

  test('the step across the start is booked in the period of its later reading', () => {
    // 100, 110 before; 125 in period: 125 - 110 = 15
    expect(summarizePeriod(kwh(100, 110, 125), between(2, 3))).toMatchObject({
      consumption: 15_000_000n,
      baselineIndex: 1,
    });
  });

  test('a period whose first reading follows a misread just before the start counts from before the dip', () => {
    // 100, 110, 20(misread) before; 120, 130 in period: (120 - 110) + (130 - 120) = 20
    const points = kwh(100, 110, 20, 120, 130);
    expect(summarizePeriod(points, between(3, 5))).toEqual<CounterSummary>({
      consumption: 20_000_000n,
      resets: 0,
      misreads: 0,
      firstCounted: 3,
      lastCounted: 4,
      baselineIndex: 1,
      lastValid: 4,
    });
  });

  test('a period whose first reading is a misread counts it and measures from the reading before it', () => {
    // 100, 110 before; 20(misread), 120 in period: 0 + (120 - 110) = 10
    expect(summarizePeriod(kwh(100, 110, 20, 120), between(2, 4))).toEqual<CounterSummary>({
      consumption: 10_000_000n,
      resets: 0,
      misreads: 1,
      firstCounted: 2,
      lastCounted: 3,
      baselineIndex: 1,
      lastValid: 3,
    });
  });

  test('the reading after the end decides whether the last reading in the period is a misread', () => {
    // 100, 110, 20 in period, 120 after it: 20 is a misread, consumption 10, measured to 110 (index 1).
    const points = kwh(100, 110, 20, 120);
    expect(summarizePeriod(points, between(0, 3))).toMatchObject({
      consumption: 10_000_000n,
      misreads: 1,
      resets: 0,
      lastCounted: 2,
      lastValid: 1,
    });
    // Without the reading after the end, 20 would be taken for a reset: 10 + 20 = 30.
    expect(summarizePeriod(points.slice(0, 3), between(0, 3))).toMatchObject({
      consumption: 30_000_000n,
      misreads: 0,
      resets: 1,
    });
  });

  test('one reading before the start is not enough when it is a misread', () => {
    // Full history 100, 110, 20, 120 with 120 in the period: step 120 - 110 = 10.
    const full = kwh(100, 110, 20, 120);
    expect(summarizePeriod(full, between(3, 4)).consumption).toBe(10_000_000n);
    // A window of 20, 120 would wrongly count 120 - 20 = 100; two before (110, 20, 120) gets it right.
    expect(summarizePeriod(full.slice(2), between(1, 2)).consumption).toBe(100_000_000n);
    expect(summarizePeriod(full.slice(1), between(2, 3)).consumption).toBe(10_000_000n);
  });

  test('periods add up on a hand-made history for every split', () => {
    // Total over everything: 10 (110-100) + 0 (20 misread) + 10 (120-110) + 5 (reset) + 0 (5 -> 5)
    //   + 7 (12-5) + 7 (reset to 7) + 3 (10-7) = 42
    const points = kwh(100, 110, 20, 120, 5, 5, 12, 7, 10);
    const whole = summarizePeriod(points, between(0, points.length));
    expect(whole.consumption).toBe(42_000_000n);
    expect(whole.resets).toBe(2);
    expect(whole.misreads).toBe(1);
    for (let b = 0; b <= points.length; b++) {
      const left = summarizePeriod(points, between(0, b));
      const right = summarizePeriod(points, between(b, points.length));
      expect(left.consumption + right.consumption).toBe(whole.consumption);
      expect(left.resets + right.resets).toBe(whole.resets);
      expect(left.misreads + right.misreads).toBe(whole.misreads);
    }
  });

  const histories = fc.array(fc.integer({ min: 0, max: 12 }).map((value) => ({ energy: BigInt(value) })), {
    minLength: 1,
    maxLength: 30,
  });
  /** A history and bounds 0 <= a <= b <= c <= length. */
  const historyWithBounds = histories.chain((points) =>
    fc
      .tuple(
        fc.integer({ min: 0, max: points.length }),
        fc.integer({ min: 0, max: points.length }),
        fc.integer({ min: 0, max: points.length }),
      )
      .map(([x, y, z]) => {
        const [a, b, c] = [x, y, z].sort((p, q) => p - q);
        return { points, a, b, c };
      }),
  );

  test('periods add up: [a, b) + [b, c) = [a, c) for any history', () => {
    fc.assert(
      fc.property(historyWithBounds, ({ points, a, b, c }) => {
        const left = summarizePeriod(points, between(a, b));
        const right = summarizePeriod(points, between(b, c));
        const whole = summarizePeriod(points, between(a, c));
        expect(left.consumption + right.consumption).toBe(whole.consumption);
        expect(left.resets + right.resets).toBe(whole.resets);
        expect(left.misreads + right.misreads).toBe(whole.misreads);
      }),
    );
  });

  /** Summarizes [a, c) from a window with `before` readings before a and 1 after c, indexes mapped back. */
  function summarizeWindow(points: readonly CounterPoint[], a: number, c: number, before: number): CounterSummary {
    const offset = Math.max(0, a - before);
    const window = points.slice(offset, Math.min(points.length, c + 1));
    const summary = summarizePeriod(window, (index) => index + offset >= a && index + offset < c);
    const shift = (index: number | null): number | null => (index === null ? null : index + offset);
    return {
      ...summary,
      firstCounted: shift(summary.firstCounted),
      lastCounted: shift(summary.lastCounted),
      baselineIndex: shift(summary.baselineIndex),
      lastValid: shift(summary.lastValid),
    };
  }

  test.each([3, 2])('a window of %i readings before the start and 1 after the end gives the full-history answer', (before) => {
    fc.assert(
      fc.property(historyWithBounds, ({ points, a, c }) => {
        expect(summarizeWindow(points, a, c, before)).toEqual(summarizePeriod(points, between(a, c)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('summarizeRanges', () => {
  test('several consecutive ranges at once: each as summarizePeriod would give it alone', () => {
    // 100 | 110, 20(misread) | 120, 5(reset) | 15 outside. Ranges: [1, 3) and [3, 5); index 0 and 5 are context.
    const points = kwh(100, 110, 20, 120, 5, 15);
    const rangeOf = (i: number) => (i >= 1 && i < 3 ? 0 : i >= 3 && i < 5 ? 1 : -1);
    const [first, second] = summarizeRanges(points, rangeOf, 2);
    expect(first).toEqual(summarizePeriod(points, between(1, 3)));
    expect(second).toEqual(summarizePeriod(points, between(3, 5)));
    // The second range counts from 110: the misread at index 2 is skipped as a baseline. 10 + 5 = 15.
    expect(second).toMatchObject({ consumption: 15_000_000n, baselineIndex: 1, resets: 1 });
  });

  test('a range with no point has nothing booked; a shared classification must match the points', () => {
    expect(summarizeRanges(kwh(1, 2), () => -1, 2)).toEqual([
      expect.objectContaining({ consumption: 0n, firstCounted: null, baselineIndex: null }),
      expect.objectContaining({ consumption: 0n, firstCounted: null, baselineIndex: null }),
    ]);
    expect(() => summarizeRanges(kwh(1, 2), () => 0, 1, classifyPoints(kwh(1)))).toThrow(RangeError);
  });

  test('for any history cut into consecutive ranges, each range equals summarizePeriod of it and they add up', () => {
    const cut = fc
      .array(fc.integer({ min: 0, max: 12 }).map((value) => ({ energy: BigInt(value) })), { minLength: 1, maxLength: 30 })
      .chain((points) =>
        fc
          .array(fc.integer({ min: 0, max: points.length }), { minLength: 1, maxLength: 6 })
          .map((cuts) => ({ points, edges: [...new Set(cuts)].sort((a, b) => a - b) })),
      );
    fc.assert(
      fc.property(cut, ({ points, edges }) => {
        const rangeOf = (i: number) => edges.findIndex((edge, k) => k + 1 < edges.length && i >= edge && i < edges[k + 1]);
        const summaries = summarizeRanges(points, rangeOf, Math.max(0, edges.length - 1));
        summaries.forEach((summary, k) => expect(summary).toEqual(summarizePeriod(points, between(edges[k], edges[k + 1]))));
        const whole = summarizePeriod(points, between(edges[0], edges[edges.length - 1]));
        expect(summaries.reduce((sum, summary) => sum + summary.consumption, 0n)).toBe(whole.consumption);
      }),
      { numRuns: 1000 },
    );
  });
});
