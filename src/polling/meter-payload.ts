/**
 * SPEC 5.1: what is accepted from a meter. Pure: takes the body text, answers a verdict.
 *
 * Reasons end up in the meter's health and in 502 responses, so they say what was wrong and never repeat what the
 * meter sent: no body, no id, no value (README: nothing a meter sends is relayed).
 */
import { formatMicro, integerDigitCount, parsePlainDecimal, type Micro } from '../common/decimal';

export const MAX_METER_BODY_BYTES = 64 * 1024;

/**
 * A meter's answer is one flat object; nesting deeper than this is refused before JSON.parse sees it. Parsing cost
 * grows faster than the depth: 64 KiB of nested arrays (30,000 levels) took JSON.parse ~13 ms here against ~0.01 ms
 * for a reading, so a few dozen such meters would hold the poller's one thread for a second every interval.
 */
export const MAX_JSON_DEPTH = 32;

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

const PLAIN_NUMBER_TEXT = /^\d+(?:\.\d+)?$/;

function readDecimalField(
  body: Record<string, unknown>,
  field: 'A' | 'kW',
  maxIntegerDigits: number,
  numberText: (field: string) => string | undefined,
): FieldResult {
  if (!Object.hasOwn(body, field)) {
    return { ok: false, reason: `field "${field}" is missing` };
  }
  const raw = body[field];
  let text: string;
  if (typeof raw === 'string') {
    text = raw;
  } else if (typeof raw === 'number') {
    const source = numberText(field);
    if (source !== undefined && PLAIN_NUMBER_TEXT.test(source)) {
      // The meter's own digits: JSON.parse makes 12345678901234.123456 the double ...234.123 and
      // 1.0000000000000000000001 a plain 1; judging the double would store a changed value instead of refusing it.
      text = source;
    } else {
      // A sign or an exponent: the parsed number is judged (JSON.parse turns 1e400 into Infinity).
      if (!Number.isFinite(raw)) {
        return { ok: false, reason: `field "${field}" is a number out of range` };
      }
      if (raw < 0) {
        return { ok: false, reason: `field "${field}" is negative` };
      }
      // The shortest round-trip form. Numbers JS prints with an exponent (>= 1e21, < 1e-6) are not plain decimals.
      text = String(raw);
    }
  } else {
    return { ok: false, reason: `field "${field}" must be a decimal string or number, got ${describeJsonType(raw)}` };
  }

  const value = parsePlainDecimal(text);
  if (value === null) {
    // Tell "too many fractional digits" apart: that one is plain notation, just finer than the column.
    const reason = /^\d+\.\d+$/.test(text)
      ? `field "${field}" has more than 6 fractional digits`
      : `field "${field}" is not a plain non-negative decimal`;
    return { ok: false, reason };
  }
  if (integerDigitCount(value) > maxIntegerDigits) {
    return {
      ok: false,
      reason: `field "${field}" has more than ${maxIntegerDigits} integer digits`,
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

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The body as text, or null when it is not valid UTF-8. JSON exchanged between systems is UTF-8 (RFC 8259 8.1);
 * decoding leniently would turn broken bytes into U+FFFD and accept a body that is not JSON at all.
 */
export function decodeMeterBody(bytes: Uint8Array): string | null {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * The source text of each top-level member whose value is a JSON number, by key; a repeated key keeps its last
 * number, and JSON.parse's value tells whether that last occurrence was a number at all. Meant for text that
 * JSON.parse accepted as an object, so the scan trusts the grammar; on anything else it still ends, at the end of
 * the text. Iterative: nesting depth costs no stack.
 */
export function topLevelNumberTexts(text: string): Map<string, string> {
  const numbers = new Map<string, string>();
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  let i = text.indexOf('{') + 1;
  const skipSpace = () => {
    while (isSpace(text[i])) i++;
  };
  /** From an opening quote to just after its closing quote. */
  const skipString = () => {
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  for (;;) {
    skipSpace();
    if (text[i] !== '"') break; // '}', or the end of text that is not JSON
    const keyStart = i;
    skipString();
    let key: string;
    try {
      key = JSON.parse(text.slice(keyStart, i)) as string;
    } catch {
      break;
    }
    skipSpace();
    i++; // ':'
    skipSpace();
    const first = text[i];
    if (first === '"') {
      skipString();
    } else if (first === '{' || first === '[') {
      let depth = 0;
      do {
        const c = text[i];
        if (c === '"') {
          skipString();
          continue;
        }
        if (c === '{' || c === '[') depth++;
        else if (c === '}' || c === ']') depth--;
        i++;
      } while (depth > 0 && i < text.length);
    } else {
      const start = i;
      while (i < text.length && !isSpace(text[i]) && text[i] !== ',' && text[i] !== '}') i++;
      if (first === '-' || (first >= '0' && first <= '9')) numbers.set(key, text.slice(start, i));
    }
    skipSpace();
    if (text[i] === ',') i++;
  }
  return numbers;
}

/** Whether brackets outside strings nest deeper than `limit`; one pass, no allocation. */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

export function parseMeterPayload(body: string, expectedMeterId: string): PayloadVerdict {
  // The HTTP client should already stop at the limit; this keeps the function safe on its own.
  // A UTF-16 unit is at least one UTF-8 byte, so the cheap length test settles most oversize bodies.
  if (body.length > MAX_METER_BODY_BYTES || Buffer.byteLength(body, 'utf8') > MAX_METER_BODY_BYTES) {
    return { ok: false, kind: 'bad-payload', reason: `body is larger than ${MAX_METER_BODY_BYTES} bytes` };
  }

  if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
    return { ok: false, kind: 'bad-payload', reason: `body nests deeper than ${MAX_JSON_DEPTH} levels` };
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
      // What the meter said is never relayed (SPEC 3), not even its id: only what was expected.
      reason: `meter answered with another id than "${expectedMeterId}"`,
    };
  }

  let numbers: Map<string, string> | undefined;
  const numberText = (field: string) => (numbers ??= topLevelNumberTexts(body)).get(field);
  const current = readDecimalField(record, 'A', MAX_CURRENT_INTEGER_DIGITS, numberText);
  if (!current.ok) {
    return { ok: false, kind: 'bad-payload', reason: current.reason };
  }
  const energy = readDecimalField(record, 'kW', MAX_ENERGY_INTEGER_DIGITS, numberText);
  if (!energy.ok) {
    return { ok: false, kind: 'bad-payload', reason: energy.reason };
  }
  return { ok: true, currentA: formatMicro(current.value), energyKwh: formatMicro(energy.value) };
}
