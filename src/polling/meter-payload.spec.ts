import {
  decodeMeterBody,
  MAX_CURRENT_INTEGER_DIGITS,
  MAX_JSON_DEPTH,
  MAX_ENERGY_INTEGER_DIGITS,
  MAX_METER_BODY_BYTES,
  parseMeterPayload,
  topLevelNumberTexts,
  type PayloadVerdict,
} from './meter-payload';

const METER_ID = '345631237';

/** A body with the given A and kW JSON texts (raw, so numbers, strings and broken values can all be written). */
function bodyWith(aJson: string, kwJson: string, idJson = JSON.stringify(METER_ID)): string {
  return `{"id": ${idJson}, "A": ${aJson}, "kW": ${kwJson}}`;
}

function expectRejected(verdict: PayloadVerdict, kind: 'bad-payload' | 'identity-mismatch'): string {
  expect(verdict).toMatchObject({ ok: false, kind });
  if (verdict.ok) throw new Error('unreachable: asserted above');
  return verdict.reason;
}

describe('parseMeterPayload: accepted values', () => {
  test('the SPEC example', () => {
    expect(parseMeterPayload('{"id": "345631237", "A": "50", "kW": "44325"}', METER_ID)).toEqual({
      ok: true,
      currentA: '50',
      energyKwh: '44325',
    });
  });

  test('the emulator answer, id being the port', () => {
    expect(parseMeterPayload('{"id": "9000", "A": "37", "kW": "22"}', '9000')).toEqual({
      ok: true,
      currentA: '37',
      energyKwh: '22',
    });
  });

  // [description, JSON text of the value, canonical result]
  test.each([
    ['integer string', '"44325"', '44325'],
    ['decimal string', '"44325.5"', '44325.5'],
    ['zero string', '"0"', '0'],
    ['six fractional digits', '"0.000001"', '0.000001'],
    ['leading zeros', '"00044325.50"', '44325.5'],
    ['trailing fractional zeros', '"12.500000"', '12.5'],
    ['14 integer digits with 6 fractional', '"99999999999999.999999"', '99999999999999.999999'],
    ['integer JSON number', '44325', '44325'],
    ['decimal JSON number', '44325.5', '44325.5'],
    ['zero JSON number', '0', '0'],
    ['negative zero JSON number (not below zero)', '-0', '0'],
    ['small JSON number printed plainly', '0.000001', '0.000001'],
    ['JSON number written with exponent but plain once parsed', '4.4325e4', '44325'],
    ['JSON number with trailing zeros', '12.50', '12.5'],
  ])('energy as %s: %s', (_description, valueJson, canonical) => {
    expect(parseMeterPayload(bodyWith('"1"', valueJson), METER_ID)).toEqual({
      ok: true,
      currentA: '1',
      energyKwh: canonical,
    });
  });

  test.each([
    ['integer string', '"50"', '50'],
    ['decimal string', '"12.345"', '12.345'],
    ['JSON number', '37.25', '37.25'],
    ['9 integer digits', '"999999999.999999"', '999999999.999999'],
  ])('current as %s: %s', (_description, valueJson, canonical) => {
    expect(parseMeterPayload(bodyWith(valueJson, '"1"'), METER_ID)).toEqual({
      ok: true,
      currentA: canonical,
      energyKwh: '1',
    });
  });

  test('extra fields are ignored', () => {
    const body = '{"id": "345631237", "A": "1", "kW": "2", "V": "230", "nested": {"deep": [1, 2, 3]}}';
    expect(parseMeterPayload(body, METER_ID)).toEqual({ ok: true, currentA: '1', energyKwh: '2' });
  });

  test('whitespace around the JSON is fine', () => {
    expect(parseMeterPayload(`\n  ${bodyWith('"1"', '"2"')}  \n`, METER_ID)).toMatchObject({ ok: true });
  });
});

describe('parseMeterPayload: rejected values', () => {
  // [JSON text of the bad value, a fragment the reason must contain]
  const rejectedValues: Array<[string, string]> = [
    ['"NaN"', 'not a plain non-negative decimal'],
    ['""', 'not a plain non-negative decimal'],
    ['"-1"', 'not a plain non-negative decimal'],
    ['"1e400"', 'not a plain non-negative decimal'],
    ['"1e5"', 'not a plain non-negative decimal'],
    ['"44 325"', 'not a plain non-negative decimal'],
    ['"44325,5"', 'not a plain non-negative decimal'],
    ['" 5"', 'not a plain non-negative decimal'],
    ['"5 "', 'not a plain non-negative decimal'],
    ['"+5"', 'not a plain non-negative decimal'],
    ['"0x10"', 'not a plain non-negative decimal'],
    ['"Infinity"', 'not a plain non-negative decimal'],
    ['".5"', 'not a plain non-negative decimal'],
    ['"5."', 'not a plain non-negative decimal'],
    ['"0.0000001"', 'more than 6 fractional digits'],
    ['1e400', 'number out of range'],
    ['-1e400', 'number out of range'],
    ['-1', 'is negative'],
    ['-0.5', 'is negative'],
    ['1e21', 'not a plain non-negative decimal'],
    ['1e-7', 'not a plain non-negative decimal'],
    ['0.1234567', 'more than 6 fractional digits'],
    ['null', 'must be a decimal string or number, got null'],
    ['true', 'must be a decimal string or number, got a boolean'],
    ['{"value": "5"}', 'must be a decimal string or number, got an object'],
    ['["5"]', 'must be a decimal string or number, got an array'],
  ];

  test.each(rejectedValues)('kW %s', (valueJson, reasonFragment) => {
    const reason = expectRejected(parseMeterPayload(bodyWith('"1"', valueJson), METER_ID), 'bad-payload');
    expect(reason).toContain(`field "kW" `);
    expect(reason).toContain(reasonFragment);
  });

  test.each(rejectedValues)('A %s', (valueJson, reasonFragment) => {
    const reason = expectRejected(parseMeterPayload(bodyWith(valueJson, '"1"'), METER_ID), 'bad-payload');
    expect(reason).toContain(`field "A" `);
    expect(reason).toContain(reasonFragment);
  });

  test.each([
    ['kW', '{"id": "345631237", "A": "1"}'],
    ['A', '{"id": "345631237", "kW": "1"}'],
    ['id', '{"A": "1", "kW": "1"}'],
  ])('missing field %s', (field, body) => {
    expect(expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload')).toBe(`field "${field}" is missing`);
  });

  test.each([
    ['kW', bodyWith('"1"', '"100000000000000"'), MAX_ENERGY_INTEGER_DIGITS],
    ['kW', bodyWith('"1"', '"100000000000000.5"'), MAX_ENERGY_INTEGER_DIGITS],
    ['kW', bodyWith('"1"', '100000000000000'), MAX_ENERGY_INTEGER_DIGITS],
    ['A', bodyWith('"1000000000"', '"1"'), MAX_CURRENT_INTEGER_DIGITS],
    ['A', bodyWith('1000000000', '"1"'), MAX_CURRENT_INTEGER_DIGITS],
  ])('%s with more integer digits than its column holds', (field, body, limit) => {
    const reason = expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload');
    expect(reason).toContain(`field "${field}" has more than ${limit} integer digits`);
  });

  test('leading zeros do not count as integer digits', () => {
    expect(parseMeterPayload(bodyWith('"0000000001"', '"000000000000001"'), METER_ID)).toEqual({
      ok: true,
      currentA: '1',
      energyKwh: '1',
    });
  });

  test('the limits are the integer digits of numeric(20,6) and numeric(15,6)', () => {
    expect(MAX_ENERGY_INTEGER_DIGITS).toBe(20 - 6);
    expect(MAX_CURRENT_INTEGER_DIGITS).toBe(15 - 6);
  });
});

describe('parseMeterPayload: body shape', () => {
  test.each([
    ['empty body', ''],
    ['HTML', '<html><body>Not found</body></html>'],
    ['truncated JSON', '{"id": "345631237", "A": "1"'],
    ['single-quoted JSON', "{'id': '345631237', 'A': '1', 'kW': '2'}"],
    ['trailing garbage', `${bodyWith('"1"', '"2"')} x`],
    ['bare NaN', 'NaN'],
  ])('%s is not JSON', (_description, body) => {
    expect(expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload')).toBe('body is not JSON');
  });

  test.each([
    ['null', 'null'],
    ['number', '44325'],
    ['string', '"44325"'],
    ['boolean', 'true'],
    ['array', '[{"id": "345631237", "A": "1", "kW": "2"}]'],
  ])('JSON %s instead of an object', (_description, body) => {
    expect(expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload')).toMatch(/^body is JSON but not an object/);
  });

  test('a body over 64 KiB is rejected without being parsed', () => {
    const padding = 'x'.repeat(MAX_METER_BODY_BYTES);
    const body = `{"id": "345631237", "A": "1", "kW": "2", "pad": "${padding}"}`;
    expect(expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload')).toBe('body is larger than 65536 bytes');
  });

  test('the size limit counts UTF-8 bytes, not characters', () => {
    // 'é' is 2 bytes: this body has fewer than 64 Ki characters but more than 64 KiB.
    const padding = 'é'.repeat(MAX_METER_BODY_BYTES / 2);
    const body = `{"id": "345631237", "A": "1", "kW": "2", "pad": "${padding}"}`;
    expect(body.length).toBeLessThan(MAX_METER_BODY_BYTES);
    expect(expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload')).toBe('body is larger than 65536 bytes');
  });

  test('a body just under the limit is accepted', () => {
    const base = '{"id": "345631237", "A": "1", "kW": "2", "pad": ""}';
    const body = base.replace('""', `"${'x'.repeat(MAX_METER_BODY_BYTES - base.length)}"`);
    expect(Buffer.byteLength(body)).toBe(MAX_METER_BODY_BYTES);
    expect(parseMeterPayload(body, METER_ID)).toMatchObject({ ok: true });
  });

  test('deeply nested JSON within the size limit is refused before it is parsed, without a crash', () => {
    // A valid reading with a deep extra field: accepted once, before nesting was bounded (see MAX_JSON_DEPTH).
    const depth = 30_000;
    const body = `{"id": "345631237", "A": "1", "kW": "2", "deep": ${'['.repeat(depth)}${']'.repeat(depth)}}`;
    // JSON.parse alone takes ~13 ms on this body, the depth scan a fraction of one: the body must never reach
    // JSON.parse. Checked by what is called, not by a clock (a 5 ms bound failed on a loaded CI machine).
    const parse = jest.spyOn(JSON, 'parse');
    try {
      expect(expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload')).toBe(
        `body nests deeper than ${MAX_JSON_DEPTH} levels`,
      );
      expect(parse).not.toHaveBeenCalledWith(body);
    } finally {
      parse.mockRestore();
    }
  });

  test('deeply nested JSON as a field value is a bad payload, not a crash', () => {
    const depth = 30_000;
    const body = `{"id": "345631237", "A": "1", "kW": ${'['.repeat(depth)}${']'.repeat(depth)}}`;
    expect(expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload')).toBe(
      `body nests deeper than ${MAX_JSON_DEPTH} levels`,
    );
  });

  test('nesting up to the limit is accepted; brackets inside strings do not count', () => {
    const nested = `${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}`;
    const atLimit = `{"id": "345631237", "A": "1", "kW": "2", "deep": ${nested}}`;
    expect(parseMeterPayload(atLimit, METER_ID)).toMatchObject({ ok: true });
    const overLimit = `{"id": "345631237", "A": "1", "kW": "2", "deep": [${nested}]}`;
    expect(expectRejected(parseMeterPayload(overLimit, METER_ID), 'bad-payload')).toContain('nests deeper');
    const inStrings = `{"id": "345631237", "A": "1", "kW": "2", "s": "${'[{'.repeat(1000)}\\\\", "t": "\\"${'['.repeat(50)}"}`;
    expect(JSON.parse(inStrings)).toMatchObject({ s: `${'[{'.repeat(1000)}\\`, t: `"${'['.repeat(50)}` });
    expect(parseMeterPayload(inStrings, METER_ID)).toMatchObject({ ok: true });
  });

  test('duplicate keys: the last one wins, as in JSON.parse', () => {
    const body = '{"id": "345631237", "A": "1", "kW": "bad", "kW": "2"}';
    expect(parseMeterPayload(body, METER_ID)).toEqual({ ok: true, currentA: '1', energyKwh: '2' });
  });

  test('a "__proto__" key does not stand in for a missing field', () => {
    const body = '{"__proto__": {"id": "345631237", "A": "1", "kW": "2"}}';
    expect(expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload')).toBe('field "id" is missing');
  });
});

describe('parseMeterPayload: identity', () => {
  test.each([
    ['numeric id equal as a string', '345', '345'],
    ['string id', '"345"', '345'],
    ['zero', '0', '0'],
    ['id with allowed punctuation', '"meter-1.a_b"', 'meter-1.a_b'],
  ])('%s: %s matches %p', (_description, idJson, expected) => {
    expect(parseMeterPayload(bodyWith('"1"', '"2"', idJson), expected)).toMatchObject({ ok: true });
  });

  test.each([
    ['leading zero differs from the number', '345', '0345', 'meter answered with another id than "0345"'],
    ['number vs string with leading zero', '"0345"', '345', 'meter answered with another id than "345"'],
    ['another meter', '"9001"', '9000', 'meter answered with another id than "9000"'],
    ['case matters', '"ABC"', 'abc', 'meter answered with another id than "abc"'],
    ['empty id', '""', '345', 'meter answered with another id than "345"'],
    ['1.0 prints as 1', '1.0', '1.0', 'meter answered with another id than "1.0"'],
  ])('%s: %s vs %p', (_description, idJson, expected, reason) => {
    expect(parseMeterPayload(bodyWith('"1"', '"2"', idJson), expected)).toEqual({
      ok: false,
      kind: 'identity-mismatch',
      reason,
    });
  });

  test('identity is reported even when the values are broken too', () => {
    const verdict = parseMeterPayload(bodyWith('"NaN"', 'null', '"other"'), METER_ID);
    expect(verdict).toMatchObject({ ok: false, kind: 'identity-mismatch' });
  });

  test.each([
    ['null', 'null', 'got null'],
    ['boolean', 'true', 'got a boolean'],
    ['object', '{"id": "345631237"}', 'got an object'],
    ['array', '["345631237"]', 'got an array'],
    ['decimal number', '345.5', 'is a number but not an integer'],
    ['infinite number', '1e400', 'is a number but not an integer'],
    ['integer beyond 2^53', '12345678901234567890', 'is an integer too large to compare exactly'],
  ])('id as %s is a bad payload', (_description, idJson, fragment) => {
    const reason = expectRejected(parseMeterPayload(bodyWith('"1"', '"2"', idJson), METER_ID), 'bad-payload');
    expect(reason).toContain('field "id"');
    expect(reason).toContain(fragment);
  });

  test.each([
    ['a long id', 'a'.repeat(500)],
    ['control and invisible characters', 'evil\n\r\u0000\u001b[31m\u202eid\u2028'],
    ['quotes that try to close the quoting', 'x", expected "345631237'],
    ['markup', 'SECRET<script>alert(1)</script>'],
  ])('the id a meter answered is never echoed: %s', (_description, answeredId) => {
    const reason = expectRejected(
      parseMeterPayload(bodyWith('"1"', '"2"', JSON.stringify(answeredId)), METER_ID),
      'identity-mismatch',
    );
    expect(reason).toBe(`meter answered with another id than "${METER_ID}"`);
  });
});

describe('parseMeterPayload: reasons never carry the raw body', () => {
  test.each([
    ['a long value', `1 ${'9'.repeat(1000)}`],
    ['control characters', '1\n2\u001b'],
    ['markup', 'SECRET<script>alert(1)</script>'],
  ])('a rejected value is never echoed: %s', (_description, value) => {
    const reason = expectRejected(parseMeterPayload(bodyWith('"1"', JSON.stringify(value)), METER_ID), 'bad-payload');
    expect(reason).toBe('field "kW" is not a plain non-negative decimal');
  });

  // Every way a value can be refused, each carrying the digits 98765: none of them may come back in the reason.
  test.each([
    ['a negative number', '-98765'],
    ['a negative fraction', '-98765.25'],
    ['a negative number with an exponent', '-9.8765e3'],
    ['a number out of range', '98765e400'],
    ['too many integer digits', '987650000000000000'],
    ['too many fractional digits', '1.98765432'],
    ['a negative string', '"-98765"'],
    ['a string with a unit', '"98765 kWh"'],
  ])('a refused value is never repeated: %s', (_description, valueJson) => {
    for (const field of ['A', 'kW'] as const) {
      const body = field === 'A' ? bodyWith(valueJson, '"1"') : bodyWith('"1"', valueJson);
      const reason = expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload');
      expect(reason).toContain(`field "${field}"`);
      expect(reason).not.toMatch(/98765|9\.8765/);
    }
  });

  test('a non-JSON body is not echoed', () => {
    const body = 'secret-token=abc123 <html>';
    const reason = expectRejected(parseMeterPayload(body, METER_ID), 'bad-payload');
    expect(reason).not.toContain('secret');
  });
});

describe('parseMeterPayload: JSON numbers are judged by the digits the meter sent', () => {
  test.each([
    ['more digits than a double holds', '12345678901234.123456', '12345678901234.123456'],
    ['16 significant digits', '1234567890.123456', '1234567890.123456'],
    ['integer at the column limit', '99999999999999', '99999999999999'],
  ])('%s: %s is stored exactly', (_description, numberJson, canonical) => {
    expect(parseMeterPayload(bodyWith('"1"', numberJson), METER_ID)).toEqual({
      ok: true,
      currentA: '1',
      energyKwh: canonical,
    });
  });

  test.each([
    ['a fraction a double rounds away', `1.${'0'.repeat(21)}1`, 'has more than 6 fractional digits'],
    ['400 fractional digits a double rounds to zero', `0.${'0'.repeat(398)}1`, 'has more than 6 fractional digits'],
    ['a 400-digit integer', '7'.repeat(400), 'has more than 14 integer digits'],
  ])('%s is refused, not rounded', (_description, numberJson, fragment) => {
    const reason = expectRejected(parseMeterPayload(bodyWith('"1"', numberJson), METER_ID), 'bad-payload');
    expect(reason).toContain(`field "kW" ${fragment}`);
    // The echo stays bounded however long the number is.
    expect(reason.length).toBeLessThan(120);
  });

  test('the double JSON.parse makes of such a number is not the value sent', () => {
    expect(String(JSON.parse('12345678901234.123456'))).not.toBe('12345678901234.123456');
    expect(String(JSON.parse(`1.${'0'.repeat(21)}1`))).toBe('1');
  });

  test('the last of repeated keys is the one judged, as in JSON.parse', () => {
    const body = '{"id": "345631237", "A": 1, "kW": 5, "kW": "x", "kW": 12345678901234.123456}';
    expect(parseMeterPayload(body, METER_ID)).toMatchObject({ ok: true, energyKwh: '12345678901234.123456' });
  });

  test('a number inside a nested value or a string is not taken for a top-level field', () => {
    const body =
      '{"x": {"kW": 1.5, "s": "\\\\", "kW\\\\": 2}, "y": ["kW", 3], "id": "345631237", "A": 1, "kW": 44325.25}';
    expect(topLevelNumberTexts(body)).toEqual(new Map([['A', '1'], ['kW', '44325.25']]));
    expect(parseMeterPayload(body, METER_ID)).toEqual({ ok: true, currentA: '1', energyKwh: '44325.25' });
  });

  test('stops at the end of text that is not JSON instead of running on', () => {
    expect(topLevelNumberTexts('{"kW": 1, "open": "\\"')).toEqual(new Map([['kW', '1']]));
    expect(topLevelNumberTexts('{"kW": 1, "open": [[{')).toEqual(new Map([['kW', '1']]));
    expect(topLevelNumberTexts('{"kW')).toEqual(new Map());
  });

  test('escaped keys and odd whitespace are read like JSON.parse reads them', () => {
    const body = '\r\n{ "id" : "345631237" ,\t"\\u0041" :\n7 , "k\\u0057":\r\n 8.5 }';
    expect(topLevelNumberTexts(body)).toEqual(new Map([['A', '7'], ['kW', '8.5']]));
    expect(parseMeterPayload(body, METER_ID)).toEqual({ ok: true, currentA: '7', energyKwh: '8.5' });
  });

  test('deep nesting before the fields costs the scan no stack', () => {
    const depth = 30_000;
    const body = `{"deep": ${'['.repeat(depth)}${']'.repeat(depth)}, "id": "345631237", "A": 2, "kW": 3}`;
    expect(topLevelNumberTexts(body)).toEqual(new Map([['A', '2'], ['kW', '3']]));
  });
});

describe('decodeMeterBody', () => {
  test('valid UTF-8, multi-byte characters included, decodes', () => {
    const text = '{"id": "zähler-😀", "A": "1", "kW": "2"}';
    expect(decodeMeterBody(Buffer.from(text, 'utf8'))).toBe(text);
  });

  test.each([
    ['a lone continuation byte', [0x80]],
    ['an invalid start byte', [0xff, 0xfe]],
    ['a truncated sequence', [0xc3]],
    ['an overlong encoding of "/"', [0xc0, 0xaf]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
  ])('%s makes the body undecodable instead of U+FFFD', (_description, bytes) => {
    const body = Buffer.concat([
      Buffer.from('{"id": "345631237", "A": "1", "kW": "2", "note": "'),
      Buffer.from(bytes),
      Buffer.from('"}'),
    ]);
    expect(decodeMeterBody(body)).toBeNull();
  });
});
