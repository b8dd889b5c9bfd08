import { DataSource } from 'typeorm';

/** The original project's fixtures: meters 1000..1149 at 127.0.0.1, each on the port equal to its id. */
export const SEED_METER_IDS = Array.from({ length: 150 }, (_, i) => String(1000 + i));

/** Registers the seed meters; those already there are left alone. Returns how many were added. */
export async function seedMeters(dataSource: DataSource): Promise<number> {
  const added: unknown[] = await dataSource.query(
    `INSERT INTO meters (meter_id, address, port)
     SELECT id::text, '127.0.0.1', id FROM generate_series(1000, 1149) AS id
     ON CONFLICT DO NOTHING RETURNING meter_id`,
  );
  return added.length;
}

/**
 * 100 readings of meter 1000, three minutes apart and ending now, with a counter that grows with the current
 * (230 V), as the original's fixture did. Registers meter 1000 if it is missing. Returns how many were added.
 */
export async function seedReadings(dataSource: DataSource, now = new Date()): Promise<number> {
  await dataSource.query(
    `INSERT INTO meters (meter_id, address, port) VALUES ('1000', '127.0.0.1', 1000) ON CONFLICT DO NOTHING`,
  );
  const count = 100;
  const stepMs = 3 * 60_000;
  const takenAt: string[] = [];
  const current: string[] = [];
  const energy: string[] = [];
  let kwh = 44_325;
  for (let i = 0; i < count; i++) {
    const amps = 10 + ((i * 7) % 31);
    kwh += (amps * 230 * (stepMs / 3_600_000)) / 1000;
    takenAt.push(new Date(now.getTime() - (count - 1 - i) * stepMs).toISOString());
    current.push(String(amps));
    energy.push(kwh.toFixed(3));
  }
  const added: unknown[] = await dataSource.query(
    `INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh)
     SELECT '1000', t, c, e FROM unnest($1::timestamptz[], $2::numeric[], $3::numeric[]) AS r(t, c, e)
     ON CONFLICT DO NOTHING RETURNING 1`,
    [takenAt, current, energy],
  );
  return added.length;
}
