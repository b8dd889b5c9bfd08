/**
 * SPEC 5.1: what is accepted from a meter. Pure: takes the body text, answers a verdict.
 *
 * Reasons end up in the meter's health and in 502 responses, so they never carry the raw body: echoed values are
 * sanitized (control and format characters removed) and truncated.
 */
import { formatMicro, integerDigitCount, parsePlainDecimal, type Micro } from '../common/decimal';

export const MAX_METER_BODY_BYTES = 64 * 1024;

/** `energy_kwh numeric(20,6)` holds 14 integer digits, `current_a numeric(15,6)` holds 9. */
export const MAX_ENERGY_INTEGER_DIGITS = 14;
export const MAX_CURRENT_INTEGER_DIGITS = 9;

export interface MeterLimits {
  maxEnergyIntegerDigits: typeof MAX_ENERGY_INTEGER_DIGITS;
  maxCurrentIntegerDigits: typeof MAX_CURRENT_INTEGER_DIGITS;
}

export const METER_LIMITS: MeterLimits = {
  maxEnergyIntegerDigits: MAX_ENERGY_INTEGER_DIGITS,
  maxCurrentIntegerDigits: MAX_CURRENT_INTEGER_DIGITS,
};

export type PayloadVerdict =
  | { ok: true; currentA: string; energyKwh: string }
  | { ok: false; kind: 'bad-payload' | 'identity-mismatch'; reason: string };

const ID_ECHO_MAX_CHARS = 60;
const VALUE_ECHO_MAX_CHARS = 40;

// Cc: C0/C1 controls (newlines, escapes); Cf: invisible format characters such as bidi overrides, which could
// make a reason display differently from what it says. U+2028/2029 break lines in many viewers.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/** A quoted, printable, bounded rendering of a string that came from a meter. */
export function echoValue(value: string, maxChars: number): string {
  const codePoints = Array.from(value.replace(UNPRINTABLE, ''));
  const shown = codePoints.length > maxChars ? `${codePoints.slice(0, maxChars).join('')}…` : codePoints.join('');
  // JSON.stringify escapes quotes and backslashes, so the echoed value cannot break out of its quotes.
  return JSON.stringify(shown);
}

function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

type FieldResult = { ok: true; value: Micro } | { ok: false; reason: string };

function readDecimalField(body: Record<string, unknown>, field: 'A' | 'kW', maxIntegerDigits: number): FieldResult {
  if (!Object.hasOwn(body, field)) {
    return { ok: false, reason: `field "${field}" is missing` };
  }
  const raw = body[field];
  let text: string;
  if (typeof raw === 'string') {
    text = raw;
  } else if (typeof raw === 'number') {
    // JSON.parse turns 1e400 into Infinity; there is no original text left to echo.
    if (!Number.isFinite(raw)) {
      return { ok: false, reason: `field "${field}" is a number out of range` };
    }
    if (raw < 0) {
      return { ok: false, reason: `field "${field}" is negative: ${String(raw)}` };
    }
    // The shortest round-trip form. Numbers JS prints with an exponent (>= 1e21, < 1e-6) are not plain decimals.
    text = String(raw);
  } else {
    return { ok: false, reason: `field "${field}" must be a decimal string or number, got ${describeJsonType(raw)}` };
  }

  const value = parsePlainDecimal(text);
  if (value === null) {
    // Tell "too many fractional digits" apart: that one is plain notation, just finer than the column.
    const reason = /^\d+\.\d+$/.test(text)
      ? `field "${field}" has more than 6 fractional digits: ${echoValue(text, VALUE_ECHO_MAX_CHARS)}`
      : `field "${field}" is not a plain non-negative decimal: ${echoValue(text, VALUE_ECHO_MAX_CHARS)}`;
    return { ok: false, reason };
  }
  if (integerDigitCount(value) > maxIntegerDigits) {
    return {
      ok: false,
      reason: `field "${field}" has more than ${maxIntegerDigits} integer digits: ${echoValue(text, VALUE_ECHO_MAX_CHARS)}`,
    };
  }
  return { ok: true, value };
}

type IdResult = { ok: true; id: string } | { ok: false; reason: string };

function readId(body: Record<string, unknown>): IdResult {
  if (!Object.hasOwn(body, 'id')) {
    return { ok: false, reason: 'field "id" is missing' };
  }
  const raw = body.id;
  if (typeof raw === 'string') {
    return { ok: true, id: raw };
  }
  if (typeof raw === 'number') {
    if (!Number.isInteger(raw)) {
      return { ok: false, reason: 'field "id" is a number but not an integer' };
    }
    // Beyond 2^53 the parsed number is not the digits the meter sent, so comparing it could match the wrong meter.
    if (!Number.isSafeInteger(raw)) {
      return { ok: false, reason: 'field "id" is an integer too large to compare exactly; send it as a string' };
    }
    return { ok: true, id: String(raw) };
  }
  return { ok: false, reason: `field "id" must be a string or an integer, got ${describeJsonType(raw)}` };
}

export function parseMeterPayload(body: string, expectedMeterId: string): PayloadVerdict {
  // The HTTP client should already stop at the limit; this keeps the function safe on its own.
  // A UTF-16 unit is at least one UTF-8 byte, so the cheap length test settles most oversize bodies.
  if (body.length > MAX_METER_BODY_BYTES || Buffer.byteLength(body, 'utf8') > MAX_METER_BODY_BYTES) {
    return { ok: false, kind: 'bad-payload', reason: `body is larger than ${MAX_METER_BODY_BYTES} bytes` };
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, kind: 'bad-payload', reason: 'body is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, kind: 'bad-payload', reason: `body is JSON but not an object (got ${describeJsonType(parsed)})` };
  }
  const record = parsed as Record<string, unknown>;

  // Identity first: an answer from the wrong device is reported as such even if its values are also broken.
  const id = readId(record);
  if (!id.ok) {
    return { ok: false, kind: 'bad-payload', reason: id.reason };
  }
  if (id.id !== expectedMeterId) {
    return {
      ok: false,
      kind: 'identity-mismatch',
      reason: `meter answered id ${echoValue(id.id, ID_ECHO_MAX_CHARS)}, expected ${echoValue(expectedMeterId, ID_ECHO_MAX_CHARS)}`,
    };
  }

  const current = readDecimalField(record, 'A', MAX_CURRENT_INTEGER_DIGITS);
  if (!current.ok) {
    return { ok: false, kind: 'bad-payload', reason: current.reason };
  }
  const energy = readDecimalField(record, 'kW', MAX_ENERGY_INTEGER_DIGITS);
  if (!energy.ok) {
    return { ok: false, kind: 'bad-payload', reason: energy.reason };
  }
  return { ok: true, currentA: formatMicro(current.value), energyKwh: formatMicro(energy.value) };
}
