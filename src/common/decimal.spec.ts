import fc from 'fast-check';
import { DECIMAL_SCALE, formatMicro, integerDigitCount, microToNumber, parsePlainDecimal } from './decimal';

describe('parsePlainDecimal', () => {
  test.each([
    ['0', 0n],
    ['44325', 44_325_000_000n],
    ['44325.5', 44_325_500_000n],
    ['0.000001', 1n],
    ['123456.789', 123_456_789_000n],
    ['007.50', 7_500_000n],
    ['1.000000', 1_000_000n],
    ['99999999999999.999999', 99_999_999_999_999_999_999n],
  ])('accepts %p as %p micro', (text, expected) => {
    expect(parsePlainDecimal(text)).toBe(expected);
  });

  test.each([
    [''],
    ['.5'],
    ['5.'],
    ['.'],
    ['-1'],
    ['+5'],
    [' 5'],
    ['5 '],
    ['44 325'],
    ['44325,5'],
    ['1,000'],
    ['1e5'],
    ['1E5'],
    ['1e400'],
    ['NaN'],
    ['Infinity'],
    ['0x10'],
    ['0b1'],
    ['1.2.3'],
    ['0.0000001'],
    ['1.1234567'],
    ['１２'], // full-width digits are not ASCII digits
    ['٣'], // Arabic-Indic digit
    ['5\n'],
  ])('rejects %p', (text) => {
    expect(parsePlainDecimal(text)).toBeNull();
  });
});

describe('formatMicro', () => {
  test.each([
    [0n, '0'],
    [44_325_000_000n, '44325'],
    [44_325_500_000n, '44325.5'],
    [1n, '0.000001'],
    [-3_250_000n, '-3.25'],
    [-1n, '-0.000001'],
    [56_666_000n, '56.666'],
    [99_999_999_999_999_999_999n, '99999999999999.999999'],
  ])('formats %p as %p', (micro, text) => {
    expect(formatMicro(micro)).toBe(text);
  });

  test('round-trips every non-negative value through parsePlainDecimal', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 20n }), (micro) => {
        expect(parsePlainDecimal(formatMicro(micro))).toBe(micro);
      }),
    );
  });

  test('canonical form never has trailing fractional zeros or an exponent', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), (micro) => {
        const text = formatMicro(micro);
        expect(text).toMatch(/^-?\d+(\.\d*[1-9])?$/);
        expect(text).not.toBe('-0');
      }),
    );
  });
});

describe('microToNumber', () => {
  test.each([
    [0n, 0],
    [44_325_500_000n, 44325.5],
    [1n, 0.000001],
    [-3_250_000n, -3.25],
    [123_456_789_000n, 123456.789],
  ])('converts %p to %p', (micro, expected) => {
    expect(microToNumber(micro)).toBe(expected);
  });
});

describe('integerDigitCount', () => {
  test.each([
    [0n, 1],
    [500_000n, 1],
    [9_999_999n, 1],
    [10_000_000n, 2],
    [-44_325_000_000n, 5],
    [99_999_999_999_999_999_999n, 14],
    [100_000_000_000_000_000_000n, 15],
  ])('%p has %p integer digits', (micro, digits) => {
    expect(integerDigitCount(micro)).toBe(digits);
  });
});

test('scale is 6, matching numeric(20,6) and numeric(15,6)', () => {
  expect(DECIMAL_SCALE).toBe(6);
});
