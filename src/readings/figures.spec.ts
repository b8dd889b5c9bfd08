import fc from 'fast-check';
import { parsePlainDecimal, type Micro } from '../common/decimal';
import { classifyPoints } from './counter';
import {
  coverage,
  type FigureOptions,
  meanCurrent,
  microRatioToNumber,
  type RangeFigures,
  rangeFigures,
  type TimedReading,
  timeWeightedCurrent,
} from './figures';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.UTC(2023, 7, 12);
/** POLL_INTERVAL_SECONDS = 60: pairs further apart than 150 s are gaps. */
const OPTIONS: FigureOptions = { maxGapMs: 150_000, maxListedGaps: 100 };

function micro(text: string | number): Micro {
  const value = parsePlainDecimal(String(text));
  if (value === null) throw new Error(`bad test decimal ${text}`);
  return value;
}

/** [minutes after T0, energy kWh, current A] */
function history(...rows: [number, string | number, (string | number)?][]): TimedReading[] {
  return rows.map(([minutes, energy, current]) => ({ at: T0 + minutes * MINUTE, energy: micro(energy), current: micro(current ?? 10) }));
}

/** What readings.repository.ts counterWindow selects: 3 readings before start, those in [start, end), 1 after. */
function windowOf(readings: readonly TimedReading[], start: number, end: number): TimedReading[] {
  const before = readings.filter((r) => r.at < start).slice(-3);
  const inside = readings.filter((r) => r.at >= start && r.at < end);
  const after = readings.filter((r) => r.at >= end).slice(0, 1);
  return [...before, ...inside, ...after];
}

type TimedFigures = RangeFigures & { fromAt: number | null; toAt: number | null };

/** What the statistics service computes for [start, end) cut at `edges`: one window, classified once. */
function figuresOf(readings: readonly TimedReading[], edges: readonly number[], options = OPTIONS): TimedFigures[] {
  const window = windowOf(readings, edges[0], edges[edges.length - 1]);
  return rangeFigures(window, edges, options, classifyPoints(window)).map((figures) => withTimes(figures, window));
}

/** Indexes are positions in one window; the times they point at compare across windows. */
function withTimes(figures: RangeFigures, window: readonly TimedReading[]): TimedFigures {
  return {
    ...figures,
    fromAt: figures.from === null ? null : window[figures.from].at,
    toAt: figures.to === null ? null : window[figures.to].at,
  };
}

function comparable(figures: TimedFigures) {
  const { from: _from, to: _to, ...rest } = figures;
  return rest;
}

describe('rangeFigures on hand-made histories', () => {
  test('current: plain mean, time-weighted mean, min and max of the readings in the range', () => {
    // 10 A holds 1 min, 40 A holds 3 min, 20 A closes the span: (10 + 120) / 4 = 32.5; plain mean 70 / 3.
    const readings = history([0, 1, 10], [1, 2, 40], [4, 3, 20]);
    const [figures] = rangeFigures(readings, [T0, T0 + HOUR], OPTIONS);
    expect(figures.current).toMatchObject({ sum: micro(70), min: micro(10), max: micro(40), heldMs: 4 * MINUTE });
    expect(meanCurrent(figures.current!, figures.readings)).toBe(70 / 3);
    expect(timeWeightedCurrent(figures.current!, figures.readings)).toBe(32.5);
  });

  test('one reading: the time-weighted mean is its value; no reading: no current at all', () => {
    const readings = history([0, 1, 12.5], [90, 2, 99]);
    const [one, none] = rangeFigures(readings, [T0, T0 + HOUR, T0 + HOUR + MINUTE], OPTIONS);
    expect(one.readings).toBe(1);
    expect(timeWeightedCurrent(one.current!, one.readings)).toBe(12.5);
    // Nothing is booked in it, so it measures from nothing (the 90-min reading is outside every range).
    expect(none).toMatchObject({ readings: 0, current: null, firstAt: null, lastAt: null, from: null, to: null });
  });

  test('coverage and gaps: pairs of counted readings further apart than 2.5 intervals are gaps', () => {
    // Readings at 0, 1, 2, 10 and 11 min: pairs 0-1, 1-2 and 10-11 are covered (3 min), 2-10 is a gap (8 min).
    // Span 11 min, coverage 3 / 11.
    const readings = history([0, 100], [1, 101], [2, 102], [10, 110], [11, 111]);
    const [figures] = rangeFigures(readings, [T0, T0 + HOUR], OPTIONS);
    expect(figures).toMatchObject({ spanMs: 11 * MINUTE, coveredMs: 3 * MINUTE, gapCount: 1 });
    expect(figures.gaps).toEqual([{ from: T0 + 2 * MINUTE, to: T0 + 10 * MINUTE }]);
    expect(coverage(figures)).toBe(3 / 11);
  });

  test('exactly 2.5 intervals apart is still covered; a millisecond more is a gap', () => {
    const readings: TimedReading[] = [
      { at: T0, energy: micro(1), current: 0n },
      { at: T0 + 150_000, energy: micro(2), current: 0n },
      { at: T0 + 300_001, energy: micro(3), current: 0n },
    ];
    const [figures] = rangeFigures(readings, [T0, T0 + HOUR], OPTIONS);
    expect(figures).toMatchObject({ coveredMs: 150_000, spanMs: 300_001, gapCount: 1 });
  });

  test('a misread is skipped by the envelope like by consumption: its neighbours are the pair', () => {
    // 100, 20 (misread), 120 at 0, 1, 2 min: the counted pair is 0 -> 2 min, 120 s apart: covered.
    const readings = history([0, 100], [1, 20], [2, 120]);
    const [figures] = rangeFigures(readings, [T0, T0 + HOUR], OPTIONS);
    expect(figures).toMatchObject({ misreads: 1, consumption: micro(20), spanMs: 2 * MINUTE, coveredMs: 2 * MINUTE });
  });

  test('the envelope of a range starts at its baseline: the step across the start is its first pair', () => {
    // Baseline at -30 min (outside), then 0, 1 min inside: the -30 -> 0 step is a gap of the range.
    const readings = history([-30, 100], [0, 105], [1, 106]);
    const [figures] = rangeFigures(readings, [T0, T0 + HOUR], OPTIONS);
    expect(figures).toMatchObject({ consumption: micro(6), from: 0, to: 2, spanMs: 31 * MINUTE, coveredMs: MINUTE });
    expect(figures.gaps).toEqual([{ from: T0 - 30 * MINUTE, to: T0 }]);
  });

  test('gaps are listed up to the limit and all counted', () => {
    const readings = history(...Array.from({ length: 8 }, (_, i): [number, number] => [i * 10, i]));
    const [figures] = rangeFigures(readings, [T0, T0 + HOUR], { ...OPTIONS, maxListedGaps: 3 });
    expect(figures.gapCount).toBe(5); // 0-10, ..., 40-50: the readings at 60 and 70 min are past the hour
    expect(figures.gaps).toHaveLength(3);
    expect(coverage(figures)).toBe(0);
  });

  test('a bucket counts from the last counted reading of an earlier bucket, a misread in between skipped', () => {
    // Buckets [0, 10 min), [10, 20 min), [20, 30 min). 100 at 5; 20 at 12 (misread: 130 follows); 130 at 25.
    const readings = history([5, 100], [12, 20], [25, 130]);
    const edges = [T0, T0 + 10 * MINUTE, T0 + 20 * MINUTE, T0 + 30 * MINUTE];
    const [first, second, third] = rangeFigures(readings, edges, OPTIONS);
    expect(first).toMatchObject({ readings: 1, consumption: 0n, from: 0, to: 0 });
    expect(second).toMatchObject({ readings: 1, consumption: 0n, misreads: 1, from: 0, to: null });
    expect(third).toMatchObject({ readings: 1, consumption: micro(30), from: 0, to: 2, gapCount: 1 });
  });

  test('readings outside every range are context only', () => {
    const readings = history([-5, 1], [0, 2], [70, 50]);
    const [figures] = rangeFigures(readings, [T0, T0 + HOUR], OPTIONS);
    expect(figures).toMatchObject({ readings: 1, consumption: micro(1), firstAt: T0, lastAt: T0 });
  });

  test('refuses readings out of time order', () => {
    expect(() => rangeFigures(history([1, 1], [0, 2]), [T0, T0 + HOUR], OPTIONS)).toThrow('ordered by time');
  });
});

describe('microRatioToNumber', () => {
  test.each<[bigint, bigint, number]>([
    [28_000_000n, 5n, 5.6],
    [1_000_000n, 3n, 1 / 3],
    [2_000_000n, 3n, 2 / 3],
    [0n, 7n, 0],
    [150_000_000n, 4n, 37.5],
    [99_999_999_999_999_999_999n, 1n, 99999999999999.999999],
    [-28_000_000n, 5n, -5.6],
  ])('%p / %p micro is %p', (numerator, denominator, expected) => {
    expect(microRatioToNumber(numerator, denominator)).toBe(expected);
  });

  test('refuses a zero denominator', () => {
    expect(() => microRatioToNumber(1n, 0n)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties on generated histories: replacements, misreads, equal readings, irregular polls and long gaps, and
// boundaries that fall exactly on readings, a millisecond off them, or anywhere.

type Event =
  | { kind: 'step'; kwh: Micro }
  | { kind: 'replace'; to: Micro }
  | { kind: 'misread'; below: Micro };

const eventArb: fc.Arbitrary<{ gap: number; event: Event; current: Micro }> = fc.record({
  gap: fc.oneof(
    { weight: 6, arbitrary: fc.constant(MINUTE) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 150_000 }) },
    { weight: 2, arbitrary: fc.integer({ min: 150_001, max: 6 * HOUR }) },
  ),
  event: fc.oneof(
    { weight: 8, arbitrary: fc.bigInt({ min: 0n, max: 5_000_000n }).map((kwh): Event => ({ kind: 'step', kwh })) },
    { weight: 1, arbitrary: fc.constant<Event>({ kind: 'step', kwh: 0n }) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 3_000_000n }).map((to): Event => ({ kind: 'replace', to })) },
    { weight: 2, arbitrary: fc.bigInt({ min: 1n, max: 2_000_000_000n }).map((below): Event => ({ kind: 'misread', below })) },
  ),
  current: fc.bigInt({ min: 0n, max: 50_000_000n }),
});

/** A history: a counter that grows, is replaced (restarts low) and misreads (one low reading, counter unchanged). */
const historyArb: fc.Arbitrary<TimedReading[]> = fc
  .tuple(fc.bigInt({ min: 0n, max: 50_000_000_000n }), fc.array(eventArb, { minLength: 0, maxLength: 40 }))
  .map(([initial, events]) => {
    let at = T0;
    let energy = initial;
    const readings: TimedReading[] = [];
    for (const { gap, event, current } of events) {
      at += gap;
      if (event.kind === 'step') energy += event.kwh;
      if (event.kind === 'replace') energy = event.to;
      const value = event.kind === 'misread' ? (energy > event.below ? energy - event.below : 0n) : energy;
      readings.push({ at, energy: value, current });
    }
    return readings;
  });

/** An instant near the history: on a reading, a millisecond before or after one, or anywhere around it. */
function instantArb(readings: readonly TimedReading[]): fc.Arbitrary<number> {
  const last = readings.length > 0 ? readings[readings.length - 1].at : T0;
  const anywhere = fc.integer({ min: T0 - HOUR, max: last + HOUR });
  if (readings.length === 0) return anywhere;
  const onReading = fc.nat({ max: readings.length - 1 }).map((i) => readings[i].at);
  return fc.oneof(onReading, onReading.map((t) => t - 1), onReading.map((t) => t + 1), anywhere);
}

const historyWithBounds = historyArb.chain((readings) =>
  fc.tuple(fc.constant(readings), fc.array(instantArb(readings), { minLength: 3, maxLength: 3 })).map(([r, bounds]) => {
    const [a, b, c] = [...bounds].sort((x, y) => x - y);
    return { readings: r, a, b, c };
  }),
);

/** Cases each property runs (reported: 4 properties, 7,000 generated histories, every split of each checked). */
const RUNS = { split: 3000, buckets: 1500, misread: 2000, window: 500 };

describe('periods and buckets add up (SPEC 6), property-based', () => {
  test(`[a, c) = [a, b) + [b, c) exactly for every b, never negative (${RUNS.split} histories)`, () => {
    fc.assert(
      fc.property(historyWithBounds, ({ readings, a, b, c }) => {
        const [whole] = figuresOf(readings, [a, c]);
        expect(whole.consumption >= 0n).toBe(true);
        // Every reading time inside [a, c] is a split point, and one arbitrary b besides.
        const splits = new Set([a, b, c, ...readings.map((r) => r.at).filter((t) => t >= a && t <= c)]);
        for (const split of splits) {
          const [left] = figuresOf(readings, [a, split]);
          const [right] = figuresOf(readings, [split, c]);
          expect(left.consumption >= 0n && right.consumption >= 0n).toBe(true);
          expect(left.consumption + right.consumption).toBe(whole.consumption);
          expect(left.readings + right.readings).toBe(whole.readings);
          expect(left.resets + right.resets).toBe(whole.resets);
          expect(left.misreads + right.misreads).toBe(whole.misreads);
        }
      }),
      { numRuns: RUNS.split },
    );
  });

  test(`a bucket cut from the period's window has the figures of the same range asked alone (${RUNS.buckets} histories)`, () => {
    const withEdges = historyArb.chain((readings) =>
      fc
        .array(instantArb(readings), { minLength: 2, maxLength: 8 })
        .map((instants) => ({ readings, edges: [...new Set(instants)].sort((x, y) => x - y) }))
        .filter(({ edges }) => edges.length >= 2),
    );
    fc.assert(
      fc.property(withEdges, ({ readings, edges }) => {
        const [whole] = figuresOf(readings, [edges[0], edges[edges.length - 1]]);
        const buckets = figuresOf(readings, edges);
        expect(buckets).toHaveLength(edges.length - 1);
        expect(buckets.reduce((sum, bucket) => sum + bucket.consumption, 0n)).toBe(whole.consumption);
        expect(buckets.reduce((sum, bucket) => sum + bucket.readings, 0)).toBe(whole.readings);
        expect(buckets.reduce((sum, bucket) => sum + bucket.resets, 0)).toBe(whole.resets);
        expect(buckets.reduce((sum, bucket) => sum + bucket.misreads, 0)).toBe(whole.misreads);
        buckets.forEach((bucket, k) => {
          const [alone] = figuresOf(readings, [edges[k], edges[k + 1]]);
          expect(comparable(bucket)).toEqual(comparable(alone));
        });
      }),
      { numRuns: RUNS.buckets },
    );
  });

  test(`adding a misread changes no consumption, only the misread count (${RUNS.misread} histories)`, () => {
    const withMisread = historyWithBounds.chain((input) => {
      const kinds = classifyPoints(input.readings).map((point) => point.kind);
      // Between two counted readings i, i + 1 with the second at or above the first, a reading lower than both
      // is a misread, and the classification of every other reading stays as it was.
      const places = input.readings
        .map((_, i) => i)
        .filter((i) => {
          const [left, right] = [input.readings[i], input.readings[i + 1]];
          return (
            right !== undefined &&
            kinds[i] !== 'misread' &&
            kinds[i + 1] !== 'misread' &&
            right.energy >= left.energy &&
            left.energy > 0n &&
            right.at - left.at >= 2
          );
        });
      if (places.length === 0) return fc.constant(null);
      return fc.record({
        input: fc.constant(input),
        place: fc.constantFrom(...places),
        fraction: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        depth: fc.bigInt({ min: 1n, max: 10n ** 12n }),
        current: fc.bigInt({ min: 0n, max: 50_000_000n }),
      });
    });
    let checked = 0;
    fc.assert(
      fc.property(withMisread, (drawn) => {
        if (drawn === null) return;
        const { input, place, fraction, depth, current } = drawn;
        const [left, right] = [input.readings[place], input.readings[place + 1]];
        const at = left.at + 1 + Math.floor(fraction * (right.at - left.at - 1));
        const dip: TimedReading = { at, energy: left.energy > depth ? left.energy - depth : 0n, current };
        const withDip = [...input.readings.slice(0, place + 1), dip, ...input.readings.slice(place + 1)];
        expect(classifyPoints(withDip)[place + 1].kind).toBe('misread');
        for (const [start, end] of [
          [input.a, input.c],
          [input.a, input.b],
          [input.b, input.c],
          [T0 - HOUR, at + 1],
          [at, at + 1],
        ]) {
          const [before] = figuresOf(input.readings, [start, end]);
          const [after] = figuresOf(withDip, [start, end]);
          expect(after.consumption).toBe(before.consumption);
          expect(after.resets).toBe(before.resets);
          expect(after.misreads).toBe(before.misreads + (at >= start && at < end ? 1 : 0));
        }
        checked++;
      }),
      { numRuns: RUNS.misread },
    );
    // Most histories have a place for a dip; the property is not vacuous.
    expect(checked).toBeGreaterThan(RUNS.misread / 2);
  });

  test(`the window (3 before, 1 after) gives the figures of the full history (${RUNS.window} histories)`, () => {
    fc.assert(
      fc.property(historyWithBounds, ({ readings, a, b, c }) => {
        const edges = [...new Set([a, b, c])];
        if (edges.length < 2) return;
        const fromWindow = figuresOf(readings, edges);
        const fromHistory = rangeFigures(readings, edges, OPTIONS).map((figures) => withTimes(figures, readings));
        expect(fromWindow.map(comparable)).toEqual(fromHistory.map(comparable));
      }),
      { numRuns: RUNS.window },
    );
  });
});
