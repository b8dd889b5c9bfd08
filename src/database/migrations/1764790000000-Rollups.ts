import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Hourly and daily rollups of the readings (issue #4 item 6): a month's statistics read ~720 hour rows or 30 day
 * rows instead of ~43,000 readings.
 *
 * A rollup row holds exactly the figures the raw path (figures.ts rangeFigures) gives for that UTC hour or day,
 * computed with the readings around it (counter.ts needs 3 before and 1 after), so rows of adjacent ranges merge
 * exactly (stats-merge.ts). Triggers keep them up to date in the transaction that changes the readings, whatever
 * writes them (the poller's batch, a live read, the seed, a test): a changed reading r can change the kind or step
 * of r, the reading before it and the two after it (counter.ts), so the hours of those four are recomputed from
 * the readings, then their days from the hours. Late and out-of-order readings need nothing special.
 *
 * Gaps depend on the poll interval (2.5 intervals): rollup_settings holds the threshold the rows are computed with
 * (the service writes its own at boot), and each row records it; a row computed with another one is not used.
 */
export class Rollups1764790000000 implements MigrationInterface {
  name = 'Rollups1764790000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE rollup_settings (
        only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        max_gap_ms bigint  NOT NULL CHECK (max_gap_ms > 0)
      )`);
    await queryRunner.query(`INSERT INTO rollup_settings (max_gap_ms) VALUES (150000)`);
    for (const table of ['readings_hourly', 'readings_daily']) {
      await queryRunner.query(`
        CREATE TABLE ${table} (
          meter_id        varchar(50)    NOT NULL,
          bucket_start    timestamptz    NOT NULL,
          readings        integer        NOT NULL,
          first_at        timestamptz    NOT NULL,
          last_at         timestamptz    NOT NULL,
          current_sum     numeric        NOT NULL,
          current_min     numeric(15, 6) NOT NULL,
          current_max     numeric(15, 6) NOT NULL,
          current_last    numeric(15, 6) NOT NULL,
          current_held    numeric        NOT NULL,
          consumption_kwh numeric        NOT NULL,
          resets          integer        NOT NULL,
          misreads        integer        NOT NULL,
          from_at         timestamptz    NOT NULL,
          from_energy     numeric(20, 6) NOT NULL,
          to_at           timestamptz,
          to_energy       numeric(20, 6),
          span_ms         bigint         NOT NULL,
          covered_ms      bigint         NOT NULL,
          gap_count       integer        NOT NULL,
          gap_from_ms     bigint[]       NOT NULL,
          gap_to_ms       bigint[]       NOT NULL,
          max_gap_ms      bigint         NOT NULL,
          CONSTRAINT ${table}_pkey PRIMARY KEY (meter_id, bucket_start)
        )`);
    }
    await queryRunner.query(ROLLUP_HOURS);
    await queryRunner.query(ROLLUP_DAYS);
    await queryRunner.query(ROLLUP_AROUND);
    await queryRunner.query(TRIGGER_FUNCTIONS);
    await queryRunner.query(`
      CREATE TRIGGER readings_rollup_insert AFTER INSERT ON readings
        REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION readings_rollup_changed()`);
    await queryRunner.query(`
      CREATE TRIGGER readings_rollup_delete AFTER DELETE ON readings
        REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION readings_rollup_changed()`);
    await queryRunner.query(`
      CREATE TRIGGER readings_rollup_update AFTER UPDATE ON readings
        REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed FOR EACH STATEMENT
        EXECUTE FUNCTION readings_rollup_updated()`);
    await queryRunner.query(`
      CREATE TRIGGER readings_rollup_truncate AFTER TRUNCATE ON readings
        FOR EACH STATEMENT EXECUTE FUNCTION readings_rollup_truncated()`);
    // Readings already stored: every hour that has one, then every day.
    await queryRunner.query(`SELECT readings_rollup_rebuild()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const trigger of ['insert', 'delete', 'update', 'truncate']) {
      await queryRunner.query(`DROP TRIGGER readings_rollup_${trigger} ON readings`);
    }
    await queryRunner.query(`DROP FUNCTION readings_rollup_changed, readings_rollup_updated, readings_rollup_truncated`);
    await queryRunner.query(`DROP FUNCTION readings_rollup_rebuild, readings_rollup_around, readings_rollup_days, readings_rollup_hours`);
    await queryRunner.query(`DROP TABLE readings_daily, readings_hourly, rollup_settings`);
  }
}

/**
 * Recomputes the given (meter, UTC hour) rows from the readings: the figures.ts rangeFigures of that hour, with the
 * 3 readings before it and the 1 after it as context (counter.ts summarizePeriod). A row whose hour has no reading
 * left is removed. Every SQL step mirrors counter.ts: a misread is below both neighbours with the next back at or
 * above the previous one (never the first or last of the window); a reading's baseline is the last non-misread
 * before it, which is the one before it unless that one is a misread, then the one before that (two misreads are
 * never adjacent). Times are compared in whole milliseconds, as the service reads them.
 */
const ROLLUP_HOURS = `
CREATE FUNCTION readings_rollup_hours(p_meter varchar[], p_hour timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  v_max_gap bigint := (SELECT max_gap_ms FROM rollup_settings);
BEGIN
  DELETE FROM readings_hourly h USING unnest(p_meter, p_hour) AS k(meter_id, hour)
   WHERE h.meter_id = k.meter_id AND h.bucket_start = k.hour;
  INSERT INTO readings_hourly
  WITH keys AS (SELECT DISTINCT meter_id, hour FROM unnest(p_meter, p_hour) AS k(meter_id, hour)),
  win AS (
    SELECT k.meter_id, k.hour, w.taken_at, w.current_a AS c, w.energy_kwh AS e,
           floor(extract(epoch FROM w.taken_at) * 1000)::bigint AS ms
      FROM keys k
     CROSS JOIN LATERAL (
           (SELECT taken_at, current_a, energy_kwh FROM readings r
             WHERE r.meter_id = k.meter_id AND r.taken_at < k.hour ORDER BY r.taken_at DESC LIMIT 3)
           UNION ALL
           (SELECT taken_at, current_a, energy_kwh FROM readings r
             WHERE r.meter_id = k.meter_id AND r.taken_at >= k.hour AND r.taken_at < k.hour + interval '1 hour')
           UNION ALL
           (SELECT taken_at, current_a, energy_kwh FROM readings r
             WHERE r.meter_id = k.meter_id AND r.taken_at >= k.hour + interval '1 hour' ORDER BY r.taken_at LIMIT 1)
         ) w
  ),
  neighbours AS (
    SELECT win.*,
           taken_at >= hour AND taken_at < hour + interval '1 hour' AS inside,
           lag(e) OVER w AS e1, lag(e, 2) OVER w AS e2, lag(taken_at) OVER w AS at1, lag(taken_at, 2) OVER w AS at2,
           lag(ms) OVER w AS ms1, lag(ms, 2) OVER w AS ms2,
           lead(e) OVER w AS next_e, lead(ms) OVER w AS next_ms, lead(taken_at) OVER w AS next_at
      FROM win WINDOW w AS (PARTITION BY meter_id, hour ORDER BY taken_at)
  ),
  kinds AS (
    SELECT neighbours.*, coalesce(e < e1 AND e < next_e AND next_e >= e1, false) AS misread FROM neighbours
  ),
  based AS (
    SELECT kinds.*,
           CASE WHEN lag(misread) OVER w THEN e2 ELSE e1 END AS base_e,
           CASE WHEN lag(misread) OVER w THEN at2 ELSE at1 END AS base_at,
           CASE WHEN lag(misread) OVER w THEN ms2 ELSE ms1 END AS base_ms
      FROM kinds WINDOW w AS (PARTITION BY meter_id, hour ORDER BY taken_at)
  ),
  steps AS (
    SELECT based.*,
           CASE WHEN misread OR base_e IS NULL THEN 0 WHEN e >= base_e THEN e - base_e ELSE e END AS step,
           NOT misread AND base_e IS NOT NULL AND e < base_e AS reset,
           CASE WHEN NOT misread AND base_ms IS NOT NULL THEN ms - base_ms END AS pair_ms,
           CASE WHEN next_at < hour + interval '1 hour' THEN c * (next_ms - ms) ELSE 0 END AS held
      FROM based WHERE inside
  )
  SELECT meter_id, hour, count(*), min(taken_at), max(taken_at),
         sum(c), min(c), max(c), (array_agg(c ORDER BY taken_at DESC))[1], sum(held),
         sum(step), count(*) FILTER (WHERE reset), count(*) FILTER (WHERE misread),
         (array_agg(coalesce(base_at, taken_at) ORDER BY taken_at))[1],
         (array_agg(CASE WHEN base_at IS NULL THEN e ELSE base_e END ORDER BY taken_at))[1],
         (array_agg(taken_at ORDER BY taken_at DESC) FILTER (WHERE NOT misread))[1],
         (array_agg(e ORDER BY taken_at DESC) FILTER (WHERE NOT misread))[1],
         coalesce(sum(pair_ms), 0), coalesce(sum(pair_ms) FILTER (WHERE pair_ms <= v_max_gap), 0),
         count(*) FILTER (WHERE pair_ms > v_max_gap),
         coalesce((array_agg(base_ms ORDER BY taken_at) FILTER (WHERE pair_ms > v_max_gap))[1:100], '{}'),
         coalesce((array_agg(ms ORDER BY taken_at) FILTER (WHERE pair_ms > v_max_gap))[1:100], '{}'),
         v_max_gap
    FROM steps
   GROUP BY meter_id, hour;
END
$fn$`;

/**
 * Recomputes the given (meter, UTC day) rows by merging that day's hour rows, as stats-merge.ts merges adjacent
 * ranges: sums, the first row's start, the last row's end, and the time-weighted current across each hour edge
 * (the last current of one hour holds until the first reading of the next). Gaps: the first 100.
 */
const ROLLUP_DAYS = `
CREATE FUNCTION readings_rollup_days(p_meter varchar[], p_day timestamptz[]) RETURNS void
LANGUAGE sql AS $fn$
  DELETE FROM readings_daily d USING unnest(p_meter, p_day) AS k(meter_id, day)
   WHERE d.meter_id = k.meter_id AND d.bucket_start = k.day;
  INSERT INTO readings_daily
  WITH keys AS (SELECT DISTINCT meter_id, day FROM unnest(p_meter, p_day) AS k(meter_id, day)),
  hours AS (
    SELECT k.day, h.*,
           lag(current_last) OVER w * (floor(extract(epoch FROM first_at) * 1000)
                                      - floor(extract(epoch FROM lag(last_at) OVER w) * 1000)) AS edge_held
      FROM keys k
      JOIN readings_hourly h
        ON h.meter_id = k.meter_id AND h.bucket_start >= k.day AND h.bucket_start < k.day + interval '24 hours'
    WINDOW w AS (PARTITION BY h.meter_id, k.day ORDER BY h.bucket_start)
  )
  SELECT meter_id, day, sum(readings), min(first_at), max(last_at),
         sum(current_sum), min(current_min), max(current_max), (array_agg(current_last ORDER BY bucket_start DESC))[1],
         sum(current_held) + coalesce(sum(edge_held), 0),
         sum(consumption_kwh), sum(resets), sum(misreads),
         (array_agg(from_at ORDER BY bucket_start))[1], (array_agg(from_energy ORDER BY bucket_start))[1],
         (array_agg(to_at ORDER BY bucket_start DESC) FILTER (WHERE to_at IS NOT NULL))[1],
         (array_agg(to_energy ORDER BY bucket_start DESC) FILTER (WHERE to_at IS NOT NULL))[1],
         sum(span_ms), sum(covered_ms), sum(gap_count),
         coalesce((SELECT array_agg(g.f ORDER BY g.f) FROM (
                     SELECT f FROM hours h2, unnest(h2.gap_from_ms) AS f
                      WHERE h2.meter_id = hours.meter_id AND h2.day = hours.day ORDER BY f LIMIT 100) g), '{}'),
         coalesce((SELECT array_agg(g.t ORDER BY g.t) FROM (
                     SELECT t FROM hours h2, unnest(h2.gap_to_ms) AS t
                      WHERE h2.meter_id = hours.meter_id AND h2.day = hours.day ORDER BY t LIMIT 100) g), '{}'),
         CASE WHEN min(max_gap_ms) = max(max_gap_ms) THEN min(max_gap_ms) ELSE 0 END
    FROM hours
   GROUP BY meter_id, day;
$fn$`;

/**
 * The rollups around changed readings: for each (meter, time) given, the hours of the reading before it, of
 * itself and of the two after it (as the table is now), then the days of those hours. Meters are locked first, in
 * one order (a transaction-level advisory lock per meter): two transactions writing one meter's readings at once
 * (a batch and a live read) then recompute one after the other, the second seeing the first's readings.
 */
const ROLLUP_AROUND = `
CREATE FUNCTION readings_rollup_around(p_meter varchar[], p_at timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  v_meters varchar[];
  v_hours timestamptz[];
  v_days timestamptz[];
BEGIN
  PERFORM pg_advisory_xact_lock(4242, hashtext(m)) FROM (SELECT DISTINCT m FROM unnest(p_meter) AS m ORDER BY m) s;
  SELECT array_agg(meter_id), array_agg(hour) INTO v_meters, v_hours FROM (
    SELECT DISTINCT p.meter_id, date_trunc('hour', a.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour
      FROM (SELECT DISTINCT meter_id, at FROM unnest(p_meter, p_at) AS k(meter_id, at)) p
     CROSS JOIN LATERAL (
           (SELECT taken_at FROM readings r WHERE r.meter_id = p.meter_id AND r.taken_at < p.at
             ORDER BY r.taken_at DESC LIMIT 1)
           UNION ALL SELECT p.at
           UNION ALL
           (SELECT taken_at FROM readings r WHERE r.meter_id = p.meter_id AND r.taken_at > p.at
             ORDER BY r.taken_at LIMIT 2)
         ) a(at)
  ) touched;
  IF v_meters IS NULL THEN RETURN; END IF;
  PERFORM readings_rollup_hours(v_meters, v_hours);
  SELECT array_agg(meter_id), array_agg(day) INTO v_meters, v_days FROM (
    SELECT DISTINCT meter_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day
      FROM unnest(v_meters, v_hours) AS k(meter_id, hour)
  ) touched;
  PERFORM readings_rollup_days(v_meters, v_days);
END
$fn$`;

const TRIGGER_FUNCTIONS = `
CREATE FUNCTION readings_rollup_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM readings_rollup_around(array_agg(meter_id), array_agg(taken_at)) FROM changed HAVING count(*) > 0;
  RETURN NULL;
END
$fn$;
CREATE FUNCTION readings_rollup_updated() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM readings_rollup_around(array_agg(meter_id), array_agg(taken_at))
     FROM (SELECT meter_id, taken_at FROM changed_old UNION SELECT meter_id, taken_at FROM changed) c
   HAVING count(*) > 0;
  RETURN NULL;
END
$fn$;
CREATE FUNCTION readings_rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  TRUNCATE readings_hourly, readings_daily;
  RETURN NULL;
END
$fn$;
-- Every rollup from scratch: after a migration, or after the gap threshold changed.
CREATE FUNCTION readings_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  v_meters varchar[];
  v_starts timestamptz[];
BEGIN
  TRUNCATE readings_hourly, readings_daily;
  SELECT array_agg(meter_id), array_agg(hour) INTO v_meters, v_starts FROM (
    SELECT DISTINCT meter_id, date_trunc('hour', taken_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour FROM readings
  ) s;
  IF v_meters IS NULL THEN RETURN; END IF;
  PERFORM readings_rollup_hours(v_meters, v_starts);
  SELECT array_agg(meter_id), array_agg(day) INTO v_meters, v_starts FROM (
    SELECT DISTINCT meter_id, date_trunc('day', bucket_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day
      FROM readings_hourly
  ) s;
  PERFORM readings_rollup_days(v_meters, v_starts);
END
$fn$`;
