/**
 * The one place where exact decimals (numeric columns and aggregates, which `pg` returns as strings) become
 * JSON numbers (SPEC 5.2). The string is parsed once, to the nearest double: exact arithmetic is done before.
 */
export function decimalToNumber(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number)) throw new Error(`not a finite decimal: ${value}`);
  return number;
}

export function nullableDecimalToNumber(value: string | null): number | null {
  return value === null ? null : decimalToNumber(value);
}
