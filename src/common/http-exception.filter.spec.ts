import { isDatabaseUnavailable } from './http-exception.filter';

/** What is answered 503 (the database cannot be reached) rather than 500 (a bug), as TypeORM and pg raise it. */
describe('isDatabaseUnavailable', () => {
  const driverError = (code: string) => ({ name: 'QueryFailedError', message: 'failed', driverError: { code } });

  it.each([
    ['ECONNREFUSED', 'nothing listens'],
    ['57P01', 'terminated by an administrator'],
    ['55000', 'the database is not accepting connections (ALLOW_CONNECTIONS false: a 500 in a break test)'],
    ['53300', 'too many clients'],
    ['3D000', 'the database does not exist'],
    ['28P01', 'authentication failed'],
    ['08006', 'connection failure'],
  ])('%s (%s): unavailable', (code) => {
    expect(isDatabaseUnavailable(driverError(code))).toBe(true);
    expect(isDatabaseUnavailable({ code })).toBe(true);
  });

  it.each([
    ['23505', 'a unique violation'],
    ['22P02', 'invalid text representation'],
    ['42P01', 'an undefined table'],
    ['55P03', 'lock not available'],
  ])('%s (%s): not unavailable', (code) => {
    expect(isDatabaseUnavailable(driverError(code))).toBe(false);
  });

  it('knows a dropped connection by its message', () => {
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseUnavailable(new Error('something else'))).toBe(false);
  });
});
