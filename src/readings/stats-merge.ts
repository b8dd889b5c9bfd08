/**
 * Statistics from rollups (issue #4 item 6): a range's figures as a Summary that merges exactly with the Summary
 * of the range right after it, so a period is answered from whole UTC days and hours of the rollup tables
 * (readings_daily, readings_hourly, see the Rollups migration) plus raw readings for the parts of an hour at its
 * edges, and gives the same figures as computing the whole period from raw readings.
 *
 * Why merging is exact: counter.ts books every reading in exactly one range, with its kind and step decided by the
 * readings around it wherever the range ends; a rollup row and a raw segment are both computed with that context.
 * So counts, consumption, resets, misreads and current sums add up; the pairs of consecutive used readings that
 * make up coverage and gaps belong to the range of their later reading, so spans add up too; a range's
 * consumption starts where its first reading's baseline is (the first non-empty part's) and ends at its last
 * valid reading (the last part that has one); the time-weighted current adds the one pair across each edge.
 */
import type { Micro } from '../common/decimal';
import type { CountedPoint } from './counter';
import { type CurrentFigures, type FigureOptions, type Gap, rangeFigures, type TimedReading } from './figures';

export interface BoundaryReading {
  at: number;
  energy: Micro;
}

/** RangeFigures with the boundary readings by value instead of by index, and the last current for merging. */
export interface Summary {
  start: number;
  end: number;
  readings: number;
  firstAt: number | null;
  lastAt: number | null;
  current: CurrentFigures | null;
  /** Current of the last reading in the range (it holds until the first reading of the next range). */
  lastCurrent: Micro | null;
  consumption: Micro;
  resets: number;
  misreads: number;
  from: BoundaryReading | null;
  to: BoundaryReading | null;
  spanMs: number;
  coveredMs: number;
  gapCount: number;
  /** The first MERGED_GAPS gaps: enough for any answer (a period lists 100, a bucket 10). */
  gaps: Gap[];
}

export const MERGED_GAPS = 100;

const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 24 * MS_PER_HOUR;

/** A part of a range: raw readings in [start, end), or one UTC hour or day row of the rollups. */
export type Segment = { kind: 'raw'; start: number; end: number } | { kind: 'hour' | 'day'; start: number };

/**
 * The parts of [start, end): the whole UTC days inside, the whole hours around them, raw readings for what is
 * left at each end (less than an hour). In zones whose offset is a whole number of hours, local days and hours
 * are whole UTC hours, so only a period bound given as an instant leaves raw parts.
 */
export function planSegments(start: number, end: number): Segment[] {
  const lo = ceilTo(start, MS_PER_HOUR);
  const hi = floorTo(end, MS_PER_HOUR);
  if (lo >= hi) return start < end ? [{ kind: 'raw', start, end }] : [];
  const segments: Segment[] = [];
  if (start < lo) segments.push({ kind: 'raw', start, end: lo });
  const dayLo = ceilTo(lo, MS_PER_DAY);
  const dayHi = floorTo(hi, MS_PER_DAY);
  if (dayLo < dayHi) {
    for (let t = lo; t < dayLo; t += MS_PER_HOUR) segments.push({ kind: 'hour', start: t });
    for (let t = dayLo; t < dayHi; t += MS_PER_DAY) segments.push({ kind: 'day', start: t });
    for (let t = dayHi; t < hi; t += MS_PER_HOUR) segments.push({ kind: 'hour', start: t });
  } else {
    for (let t = lo; t < hi; t += MS_PER_HOUR) segments.push({ kind: 'hour', start: t });
  }
  if (hi < end) segments.push({ kind: 'raw', start: hi, end });
  return segments;
}

function floorTo(t: number, unit: number): number {
  return Math.floor(t / unit) * unit;
}

function ceilTo(t: number, unit: number): number {
  return Math.ceil(t / unit) * unit;
}

export function emptySummary(start: number, end: number): Summary {
  return {
    start,
    end,
    readings: 0,
    firstAt: null,
    lastAt: null,
    current: null,
    lastCurrent: null,
    consumption: 0n,
    resets: 0,
    misreads: 0,
    from: null,
    to: null,
    spanMs: 0,
    coveredMs: 0,
    gapCount: 0,
    gaps: [],
  };
}

/** Summaries of the ranges [edges[k], edges[k + 1]) computed from raw readings (figures.ts). */
export function rawSummaries(
  readings: readonly TimedReading[],
  edges: readonly number[],
  options: FigureOptions,
  counted?: readonly CountedPoint[],
): Summary[] {
  return rangeFigures(readings, edges, options, counted).map((figures) => {
    const boundary = (index: number | null): BoundaryReading | null =>
      index === null ? null : { at: readings[index].at, energy: readings[index].energy };
    const lastIndex = figures.lastAt === null ? null : lastIndexAt(readings, figures.lastAt);
    return {
      start: figures.start,
      end: figures.end,
      readings: figures.readings,
      firstAt: figures.firstAt,
      lastAt: figures.lastAt,
      current: figures.current,
      lastCurrent: lastIndex === null ? null : readings[lastIndex].current,
      consumption: figures.consumption,
      resets: figures.resets,
      misreads: figures.misreads,
      from: boundary(figures.from),
      to: boundary(figures.to),
      spanMs: figures.spanMs,
      coveredMs: figures.coveredMs,
      gapCount: figures.gapCount,
      gaps: figures.gaps,
    };
  });
}

/** The reading taken at `at` (readings are ordered by time; taken_at is unique per meter). */
function lastIndexAt(readings: readonly TimedReading[], at: number): number {
  let low = 0;
  let high = readings.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (readings[middle].at <= at) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** `a` followed by `b`, the range right after it: the figures of their union. */
export function mergeSummaries(a: Summary, b: Summary): Summary {
  if (b.readings === 0) return { ...a, end: b.end };
  if (a.readings === 0) return { ...b, start: a.start };
  const ac = a.current!;
  const bc = b.current!;
  const edgeMs = b.firstAt! - a.lastAt!;
  return {
    start: a.start,
    end: b.end,
    readings: a.readings + b.readings,
    firstAt: a.firstAt,
    lastAt: b.lastAt,
    current: {
      sum: ac.sum + bc.sum,
      min: ac.min < bc.min ? ac.min : bc.min,
      max: ac.max > bc.max ? ac.max : bc.max,
      heldSum: ac.heldSum + bc.heldSum + a.lastCurrent! * BigInt(edgeMs),
      heldMs: ac.heldMs + edgeMs + bc.heldMs,
    },
    lastCurrent: b.lastCurrent,
    consumption: a.consumption + b.consumption,
    resets: a.resets + b.resets,
    misreads: a.misreads + b.misreads,
    from: a.from,
    to: b.to ?? a.to,
    spanMs: a.spanMs + b.spanMs,
    coveredMs: a.coveredMs + b.coveredMs,
    gapCount: a.gapCount + b.gapCount,
    gaps: a.gaps.length >= MERGED_GAPS ? a.gaps : [...a.gaps, ...b.gaps].slice(0, MERGED_GAPS),
  };
}
