import { MigrationInterface, QueryRunner } from 'typeorm';
import { createRollupTriggers, dropRollupTriggers } from './1764790000000-Rollups';

/** The readings table: the same columns and key, partitioned (up) or not (down). */
const READINGS_TABLE = `
  CREATE TABLE readings (
    meter_id   varchar(50)    NOT NULL,
    taken_at   timestamptz    NOT NULL,
    current_a  numeric(15, 6) NOT NULL CHECK (current_a >= 0),
    energy_kwh numeric(20, 6) NOT NULL CHECK (energy_kwh >= 0),
    CONSTRAINT readings_pkey PRIMARY KEY (meter_id, taken_at) INCLUDE (current_a, energy_kwh)
  )`;

/**
 * Readings partitioned by month (issue #4 item 7), so that READINGS_RETENTION_DAYS drops whole months of raw
 * readings (DROP TABLE: no row-by-row DELETE, no vacuum debt) while the rollups keep serving their statistics.
 *
 * Monthly RANGE partitions on taken_at, in UTC, named readings_pYYYYMM; readings_default takes whatever falls
 * outside them, so no reading is ever refused. readings_ensure_partitions creates the months of a range, first
 * moving that month's rows out of the default partition (the service calls it for the months ahead, daily).
 * An existing table is converted with its data: renamed, its rows copied into the partitions, dropped. The rollup
 * triggers move to the new table; moving rows between partitions touches no rollup (the data does not change).
 */
export class PartitionReadings1764800000000 implements MigrationInterface {
  name = 'PartitionReadings1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await dropRollupTriggers(queryRunner);
    await queryRunner.query(`ALTER TABLE readings RENAME TO readings_unpartitioned`);
    await queryRunner.query(`ALTER TABLE readings_unpartitioned RENAME CONSTRAINT readings_pkey TO readings_unpartitioned_pkey`);
    await queryRunner.query(`${READINGS_TABLE} PARTITION BY RANGE (taken_at)`);
    await queryRunner.query(`CREATE TABLE readings_default PARTITION OF readings DEFAULT`);
    await queryRunner.query(ENSURE_PARTITIONS);
    await queryRunner.query(DROP_PARTITIONS_BEFORE);
    await queryRunner.query(`
      SELECT readings_ensure_partitions(coalesce(min(taken_at), now()), greatest(max(taken_at), now()) + interval '2 months')
        FROM readings_unpartitioned`);
    await queryRunner.query(`INSERT INTO readings SELECT meter_id, taken_at, current_a, energy_kwh FROM readings_unpartitioned`);
    await queryRunner.query(`DROP TABLE readings_unpartitioned`);
    await createRollupTriggers(queryRunner);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await dropRollupTriggers(queryRunner);
    await queryRunner.query(`ALTER TABLE readings RENAME TO readings_partitioned`);
    await queryRunner.query(`ALTER INDEX readings_pkey RENAME TO readings_partitioned_pkey`);
    await queryRunner.query(READINGS_TABLE);
    await queryRunner.query(`INSERT INTO readings SELECT meter_id, taken_at, current_a, energy_kwh FROM readings_partitioned`);
    await queryRunner.query(`DROP TABLE readings_partitioned`);
    await queryRunner.query(`DROP FUNCTION readings_ensure_partitions, readings_drop_partitions_before`);
    await createRollupTriggers(queryRunner);
  }
}

/**
 * Creates the monthly partitions (UTC months) covering [p_from, p_to] that do not exist yet; returns how many.
 * The month's rows in the default partition move into the new one first (attaching checks the default holds none).
 */
const ENSURE_PARTITIONS = `
CREATE FUNCTION readings_ensure_partitions(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
  v_month timestamp := date_trunc('month', p_from AT TIME ZONE 'UTC');
  v_name text;
  v_created integer := 0;
BEGIN
  -- Instances booting together would both find a month missing and both create it.
  PERFORM pg_advisory_xact_lock(4243);
  WHILE v_month AT TIME ZONE 'UTC' <= p_to LOOP
    v_name := 'readings_p' || to_char(v_month, 'YYYYMM');
    IF to_regclass(v_name) IS NULL THEN
      EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
      EXECUTE format(
        'WITH moved AS (DELETE FROM readings_default WHERE taken_at >= %L AND taken_at < %L RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved',
        v_month AT TIME ZONE 'UTC', (v_month + interval '1 month') AT TIME ZONE 'UTC', v_name);
      EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        v_name, v_month AT TIME ZONE 'UTC', (v_month + interval '1 month') AT TIME ZONE 'UTC');
      v_created := v_created + 1;
    END IF;
    v_month := v_month + interval '1 month';
  END LOOP;
  RETURN v_created;
END
$fn$`;

/**
 * Drops the monthly partitions that end at or before p_before (DROP TABLE, no trigger: the rollups stay); returns
 * their names. Rows of the default partition are never expired this way. Dropping a partition locks the readings
 * table for a moment (DETACH ... CONCURRENTLY is not possible while a default partition exists).
 */
const DROP_PARTITIONS_BEFORE = `
CREATE FUNCTION readings_drop_partitions_before(p_before timestamptz) RETURNS text[]
LANGUAGE plpgsql AS $fn$
DECLARE
  v_name text;
  v_dropped text[] := '{}';
BEGIN
  PERFORM pg_advisory_xact_lock(4243);
  FOR v_name IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'readings'::regclass AND c.relname ~ '^readings_p[0-9]{6}$'
       AND (to_date(substr(c.relname, 11), 'YYYYMM')::timestamp + interval '1 month') AT TIME ZONE 'UTC' <= p_before
     ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE %I', v_name);
    v_dropped := v_dropped || v_name;
    -- The rollups of the hours dropped are all that is left of them: refreshes leave them alone from now on.
    UPDATE rollup_settings
       SET raw_since = greatest(raw_since, (to_date(substr(v_name, 11), 'YYYYMM')::timestamp + interval '1 month') AT TIME ZONE 'UTC');
  END LOOP;
  RETURN v_dropped;
END
$fn$`;
