import { DataSource } from 'typeorm';

export interface MeterRow {
  meter_id: string;
  address: string;
  port: number;
  enabled: boolean;
  name: string | null;
}

let nextPort = 20_000;

/** A meter row with defaults merged with overrides, inserted directly (each test creates what it reads). */
export async function insertMeter(dataSource: DataSource, overrides: Partial<MeterRow> = {}): Promise<MeterRow> {
  const port = overrides.port ?? nextPort++;
  const row: MeterRow = {
    meter_id: overrides.meter_id ?? `m-${port}`,
    address: '127.0.0.1',
    port,
    enabled: true,
    name: null,
    ...overrides,
  };
  await dataSource.query(
    'INSERT INTO meters (meter_id, address, port, enabled, name) VALUES ($1, $2, $3, $4, $5)',
    [row.meter_id, row.address, row.port, row.enabled, row.name],
  );
  return row;
}

/** Readings for one meter: [ISO time, energy] pairs, current 10 A unless given. */
export async function insertReadings(
  dataSource: DataSource,
  meterId: string,
  readings: readonly (readonly [string, string | number, (string | number)?])[],
): Promise<void> {
  await dataSource.query(
    `INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh)
     SELECT $1, t, c, e FROM unnest($2::timestamptz[], $3::numeric[], $4::numeric[]) AS r(t, c, e)`,
    [meterId, readings.map((r) => r[0]), readings.map((r) => String(r[2] ?? 10)), readings.map((r) => String(r[1]))],
  );
}

export async function countReadings(dataSource: DataSource, meterId?: string): Promise<number> {
  const [{ count }]: { count: string }[] = meterId
    ? await dataSource.query('SELECT count(*) AS count FROM readings WHERE meter_id = $1', [meterId])
    : await dataSource.query('SELECT count(*) AS count FROM readings');
  return Number(count);
}

/** Removes every meter and every reading (readings first: there is no cascade, see the IngestTuning migration). */
export async function deleteAllMeters(dataSource: DataSource): Promise<void> {
  await dataSource.query('TRUNCATE readings, meters');
}
