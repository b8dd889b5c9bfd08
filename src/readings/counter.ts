/**
 * SPEC 5.3 counter semantics on exact values.
 *
 * Every reading books the energy step from the reading before it (its "baseline") at its own time:
 * - misread: a single reading lower than both neighbours while the next one is back at or above the previous one.
 *   It adds nothing and is skipped as a baseline: the next reading counts from the reading before the dip.
 * - reset: a drop that is not a misread (the meter was replaced and restarted from zero); it adds its own value.
 * - normal: counter at or above its baseline; it adds the difference.
 * - first: no baseline at all; it adds nothing.
 * So every step is >= 0 and consumption is never negative.
 */
import type { Micro } from '../common/decimal';

export interface CounterPoint {
  energy: Micro;
}

export type PointKind = 'first' | 'normal' | 'reset' | 'misread';

export interface CountedPoint {
  kind: PointKind;
  /** Energy this reading adds; 0 for 'first' and 'misread'. */
  step: Micro;
}

/**
 * Whether points[i] is a misread. Decided from the raw neighbours only, never from their classification, so the
 * answer for one reading needs exactly the reading before and the reading after it.
 *
 * Two consecutive readings are never both misreads: i being one needs e[i] < e[i+1], i+1 being one needs
 * e[i+1] < e[i]. Hence the previous neighbour of a misread is never a misread itself, and it is the baseline
 * of the reading after the dip, which is at or above it (the "next >= prev" condition): a 'normal' step.
 */
function isMisread(points: readonly CounterPoint[], i: number): boolean {
  if (i === 0 || i === points.length - 1) {
    // The newest reading has no next one yet: a drop there is a reset until the next reading says otherwise.
    return false;
  }
  const previous = points[i - 1].energy;
  const current = points[i].energy;
  const next = points[i + 1].energy;
  return current < previous && current < next && next >= previous;
}

/** Classifies points ordered oldest first; the result has the same length and order. */
export function classifyPoints(points: readonly CounterPoint[]): CountedPoint[] {
  const counted: CountedPoint[] = [];
  let baseline: Micro | null = null;
  for (let i = 0; i < points.length; i++) {
    const energy = points[i].energy;
    if (isMisread(points, i)) {
      counted.push({ kind: 'misread', step: 0n });
      continue;
    }
    if (baseline === null) {
      counted.push({ kind: 'first', step: 0n });
    } else if (energy >= baseline) {
      counted.push({ kind: 'normal', step: energy - baseline });
    } else {
      counted.push({ kind: 'reset', step: energy });
    }
    baseline = energy;
  }
  return counted;
}

export interface CounterSummary {
  /** Sum of the steps booked at readings inside the period. */
  consumption: Micro;
  /** Readings inside the period classified as resets / misreads. */
  resets: number;
  misreads: number;
  /** Input indexes of the first and last reading inside the period (of any kind); null when there is none. */
  firstCounted: number | null;
  lastCounted: number | null;
  /**
   * Input index of the reading the period's consumption is measured from: the last non-misread reading before
   * firstCounted (null when there is none in the input, or no reading in the period). The energy spans the time
   * from this reading to lastCounted, which is what an average power is taken over.
   */
  baselineIndex: number | null;
  /** Input index of the last non-misread reading inside the period: where the period's consumption is measured to. */
  lastValid: number | null;
}

/**
 * Summarizes the readings for which inPeriod(index) holds, from points ordered oldest first.
 *
 * The caller passes a window of the history: the 3 readings before the period start (fewer when the history is
 * shorter), the readings in the period, and 1 reading after the end (when there is one). That is enough for
 * every in-period reading to get the same kind and step as in the full history, because:
 * - Whether reading r_i is a misread depends on r_(i-1), r_i and r_(i+1) only. For the first in-period reading
 *   r_p that needs r_(p-1); for the last one r_q it needs r_(q+1), the 1 reading after the end. Without it the
 *   last in-period reading would look like the newest reading, and a dip there would count as a reset.
 * - The step of r_p is taken from its baseline, the last non-misread before it: r_(p-1) if that is not a misread,
 *   else r_(p-2), which then is not a misread either (two misreads are never adjacent). Deciding about r_(p-1)
 *   needs r_(p-2) and r_p, both in the window. So readings before r_(p-2) never matter: 2 would do, and 3
 *   leave a margin. (With only 2, r_(p-2) would be the oldest point of the window and taken for a non-misread
 *   for lack of a previous point; that is harmless, as r_(p-2) only serves as a baseline when r_(p-1) is a
 *   misread, and then r_(p-2) truly is not one.)
 * - Later in-period readings have their neighbours and baselines inside the window by the same argument.
 * Kinds computed for the window's out-of-period points may differ from the full history; they are not counted.
 */
export function summarizePeriod(points: readonly CounterPoint[], inPeriod: (index: number) => boolean): CounterSummary {
  return summarizeRanges(points, (index) => (inPeriod(index) ? 0 : -1), 1)[0];
}

/**
 * summarizePeriod for several disjoint ranges at once (a period and its buckets), classifying the points once:
 * rangeOf(index) is the range a point belongs to, 0 <= range < rangeCount, or -1 for a point outside every range
 * (context only). Every point is booked in at most one range, so the ranges' consumptions, resets and misreads add
 * up exactly to those of their union. A range's baseline is the last non-misread point before its first point,
 * wherever that point lies (in an earlier range or before them all).
 */
export function summarizeRanges(
  points: readonly CounterPoint[],
  rangeOf: (index: number) => number,
  rangeCount: number,
  counted: readonly CountedPoint[] = classifyPoints(points),
): CounterSummary[] {
  if (counted.length !== points.length) throw new RangeError('counted must classify exactly the given points');
  const summaries: CounterSummary[] = Array.from({ length: rangeCount }, () => ({
    consumption: 0n,
    resets: 0,
    misreads: 0,
    firstCounted: null,
    lastCounted: null,
    baselineIndex: null,
    lastValid: null,
  }));
  let lastNonMisread: number | null = null;
  for (let i = 0; i < counted.length; i++) {
    const point = counted[i];
    const range = rangeOf(i);
    if (range >= 0) {
      const summary = summaries[range];
      if (summary.firstCounted === null) {
        summary.firstCounted = i;
        summary.baselineIndex = lastNonMisread;
      }
      summary.lastCounted = i;
      if (point.kind !== 'misread') summary.lastValid = i;
      summary.consumption += point.step;
      if (point.kind === 'reset') summary.resets++;
      if (point.kind === 'misread') summary.misreads++;
    }
    if (point.kind !== 'misread') lastNonMisread = i;
  }
  return summaries;
}
