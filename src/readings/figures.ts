/**
 * The figures of a period and of each of its buckets, from one window of readings classified once (counter.ts).
 *
 * Pure: readings in, exact figures out (Micro for energy and current sums). The statistics service fetches the
 * window (readings.repository.ts counterWindow) and maps these figures to the response; the property tests run
 * the same functions on generated histories.
 */
import type { Micro } from '../common/decimal';
import { classifyPoints, type CountedPoint, summarizeRanges } from './counter';

export interface TimedReading {
  /** taken_at in epoch milliseconds. */
  at: number;
  energy: Micro;
  current: Micro;
}

/** Two consecutive readings used for consumption that lie further apart than the allowed gap. */
export interface Gap {
  from: number;
  to: number;
}

export interface CurrentFigures {
  /** Exact sum, minimum and maximum of the samples in the range. */
  sum: Micro;
  min: Micro;
  max: Micro;
  /** Sum of current_i * (at_(i+1) - at_i) over the range's readings (the last one holds for no time), Micro x ms. */
  heldSum: bigint;
  /** at_last - at_first of the range's readings: the time the held values cover. */
  heldMs: number;
}

export interface RangeFigures {
  /** The range [start, end), epoch milliseconds. */
  start: number;
  end: number;
  /** Readings taken in the range (misreads included) and the first and last of them. */
  readings: number;
  firstAt: number | null;
  lastAt: number | null;
  /** Null when the range has no reading. */
  current: CurrentFigures | null;
  /** Counter steps booked at readings in the range (SPEC 5.3); never negative. */
  consumption: Micro;
  resets: number;
  misreads: number;
  /** Input indexes of the readings consumption is measured from and to (see CounterSummary), null when none. */
  from: number | null;
  to: number | null;
  /**
   * The error envelope of `consumption`: between `from` and `to`, the readings used for it (misreads skipped) are
   * consecutive pairs; spanMs is their total time, coveredMs the time of the pairs no further apart than
   * maxGapMs. The other pairs are gaps: the energy of a gap is known, when it was used within it is not.
   */
  spanMs: number;
  coveredMs: number;
  gapCount: number;
  /** The first maxListedGaps gaps, oldest first. */
  gaps: Gap[];
}

/** Gaps listed in an answer: per period, and per bucket (a series can have thousands of buckets). */
export const LISTED_GAPS = { period: 100, bucket: 10 } as const;

/** Consecutive counted readings further apart than this many poll intervals are a gap. */
export const GAP_POLL_INTERVALS = 2.5;

export interface FigureOptions {
  /** Consecutive used readings further apart than this are a gap (2.5 poll intervals in the service). */
  maxGapMs: number;
  /** Gaps listed per range; gapCount counts them all. */
  maxListedGaps: number;
}

/**
 * Figures for the ranges [edges[k], edges[k + 1]) from readings ordered by time (oldest first, as counterWindow
 * returns them). Readings outside every range are context: they decide the kinds and baselines of the readings
 * inside (see summarizePeriod for how many are needed) and are not counted. Pass `counted` to share one
 * classification between several calls on the same readings (the period and its buckets).
 */
export function rangeFigures(
  readings: readonly TimedReading[],
  edges: readonly number[],
  options: FigureOptions,
  counted: readonly CountedPoint[] = classifyPoints(readings),
): RangeFigures[] {
  const rangeCount = Math.max(0, edges.length - 1);
  const rangeIndex = new Int32Array(readings.length).fill(-1);
  let range = 0;
  for (let i = 0; i < readings.length; i++) {
    const at = readings[i].at;
    if (i > 0 && at < readings[i - 1].at) throw new RangeError('readings must be ordered by time');
    while (range < rangeCount && at >= edges[range + 1]) range++;
    if (range < rangeCount && at >= edges[range]) rangeIndex[i] = range;
  }
  const summaries = summarizeRanges(readings, (i) => rangeIndex[i], rangeCount, counted);

  return summaries.map((summary, k) => {
    const figures: RangeFigures = {
      start: edges[k],
      end: edges[k + 1],
      readings: 0,
      firstAt: null,
      lastAt: null,
      current: null,
      consumption: summary.consumption,
      resets: summary.resets,
      misreads: summary.misreads,
      from: summary.baselineIndex ?? summary.firstCounted,
      to: summary.lastValid,
      spanMs: 0,
      coveredMs: 0,
      gapCount: 0,
      gaps: [],
    };
    const first = summary.firstCounted;
    const last = summary.lastCounted;
    if (first === null || last === null) return figures;

    // The readings of a range are contiguous in the input: it is ordered by time.
    figures.readings = last - first + 1;
    figures.firstAt = readings[first].at;
    figures.lastAt = readings[last].at;
    let sum = 0n;
    let min = readings[first].current;
    let max = min;
    let heldSum = 0n;
    for (let i = first; i <= last; i++) {
      const current = readings[i].current;
      sum += current;
      if (current < min) min = current;
      if (current > max) max = current;
      if (i < last) heldSum += current * BigInt(readings[i + 1].at - readings[i].at);
    }
    figures.current = { sum, min, max, heldSum, heldMs: readings[last].at - readings[first].at };

    if (figures.from !== null && figures.to !== null) {
      let previous = figures.from;
      for (let i = figures.from + 1; i <= figures.to; i++) {
        if (counted[i].kind === 'misread') continue;
        const distance = readings[i].at - readings[previous].at;
        figures.spanMs += distance;
        if (distance <= options.maxGapMs) {
          figures.coveredMs += distance;
        } else {
          figures.gapCount++;
          if (figures.gaps.length < options.maxListedGaps) figures.gaps.push({ from: readings[previous].at, to: readings[i].at });
        }
        previous = i;
      }
    }
    return figures;
  });
}

/** The plain mean of the samples. */
export function meanCurrent(current: CurrentFigures, readings: number): number {
  return microRatioToNumber(current.sum, BigInt(readings));
}

/**
 * The mean of current over time: each reading holds its value until the next reading of the range, from the first
 * reading to the last (the last closes the span and carries no weight). Readings that span no time (one reading)
 * give the plain mean.
 */
export function timeWeightedCurrent(current: CurrentFigures, readings: number): number {
  if (current.heldMs <= 0) return meanCurrent(current, readings);
  return microRatioToNumber(current.heldSum, BigInt(current.heldMs));
}

/** Share of the span covered by readings close enough together; null when the readings used span no time. */
export function coverage(figures: RangeFigures): number | null {
  return figures.spanMs > 0 ? figures.coveredMs / figures.spanMs : null;
}

const RATIO_DIGITS = 20;
const RATIO_SCALE = 10n ** BigInt(RATIO_DIGITS);

/**
 * numerator / denominator / 10^6 as the nearest JSON number: the quotient is taken exactly to 20 decimals (far
 * beyond a double's 17 significant digits) and parsed once, so 28 / 5 gives 5.6, not 5.6000000000000005.
 */
export function microRatioToNumber(numerator: bigint, denominator: bigint): number {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const negative = numerator < 0n;
  const scaled = ((negative ? -numerator : numerator) * RATIO_SCALE) / (denominator * 1_000_000n);
  const digits = scaled.toString().padStart(RATIO_DIGITS + 1, '0');
  const value = Number(`${digits.slice(0, -RATIO_DIGITS)}.${digits.slice(-RATIO_DIGITS)}`);
  return negative ? -value : value;
}
