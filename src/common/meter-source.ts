/** The address and port a meter was read at (a poll or a live read). */
export interface MeterSource {
  address: string;
  port: number;
}

/**
 * SQL: the unnest row `alias` (its address and port, null when unknown) was read where the meter `m` is registered
 * now. Writes of a reading or of health check it, so that what was read from a meter that has since been moved, or
 * deleted and registered again elsewhere under the same id, is not written to the meter as it is now.
 */
export const SAME_SOURCE = (alias: string): string =>
  `(${alias}.address IS NULL OR (m.address = ${alias}.address AND m.port = ${alias}.port))`;
