/**
 * Exact fixed-point decimals for meter values.
 *
 * Energy is stored as `numeric(20,6)` and current as `numeric(15,6)`, so every value the service handles has at
 * most 6 fractional digits. Carrying them as integers of millionths (`Micro`) on BigInt keeps sums and
 * differences exact; floating point would drift (0.1 + 0.2) and lose digits above 2^53.
 */

export const DECIMAL_SCALE = 6;

/** A decimal value times 10^DECIMAL_SCALE, e.g. 44325.5 is 44325500000n. */
export type Micro = bigint;

export const MICRO_PER_UNIT: Micro = 10n ** BigInt(DECIMAL_SCALE);

// Strict plain notation: digits, optionally one dot followed by digits. No sign, exponent, spaces, separators,
// and no '.5' or '5.' forms, so that what a meter sends is read one way only.
const PLAIN_DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * Parses a non-negative decimal in strict plain notation ("44325", "0.000001", "007.5").
 * Returns null for anything else, including more than DECIMAL_SCALE fractional digits: rounding would silently
 * change a counter value, so such input is refused rather than rounded.
 */
export function parsePlainDecimal(s: string): Micro | null {
  const match = PLAIN_DECIMAL.exec(s);
  if (match === null) {
    return null;
  }
  const integerDigits = match[1];
  const fractionDigits = match[2] ?? '';
  if (fractionDigits.length > DECIMAL_SCALE) {
    return null;
  }
  return BigInt(integerDigits) * MICRO_PER_UNIT + BigInt(fractionDigits.padEnd(DECIMAL_SCALE, '0'));
}

/** Canonical plain string: no exponent, no trailing fractional zeros, no dot for whole values, '-' when negative. */
export function formatMicro(v: Micro): string {
  const negative = v < 0n;
  const magnitude = negative ? -v : v;
  const integerPart = (magnitude / MICRO_PER_UNIT).toString();
  const fractionPart = (magnitude % MICRO_PER_UNIT).toString().padStart(DECIMAL_SCALE, '0').replace(/0+$/, '');
  const sign = negative ? '-' : '';
  return fractionPart === '' ? `${sign}${integerPart}` : `${sign}${integerPart}.${fractionPart}`;
}

/**
 * For JSON output, which carries numbers as JSON numbers (SPEC 5.2). Going through the decimal string gives the
 * double nearest to the exact value; values within 15 significant digits come back unchanged.
 */
export function microToNumber(v: Micro): number {
  return Number(formatMicro(v));
}

/** Number of digits in the integer part of |v| (0.5 has one: "0"), for column-range checks. */
export function integerDigitCount(v: Micro): number {
  const magnitude = v < 0n ? -v : v;
  return (magnitude / MICRO_PER_UNIT).toString().length;
}
