import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Hourly and daily rollups of the readings (issue #4 item 6): a month's statistics read ~720 hour rows or 30 day
 * rows instead of ~43,000 readings.
 *
 * A rollup row holds exactly the figures the raw path (figures.ts rangeFigures) gives for that UTC hour or day,
 * computed with the readings around it (counter.ts needs 3 before and 1 after), so rows of adjacent ranges merge
 * exactly (stats-merge.ts).
 *
 * Whatever writes readings (the poller's batch, a live read, the seed, a test), a statement trigger marks the
 * (meter, UTC hour) pairs it touched in rollup_dirty, in the same transaction; readings_rollup_refresh recomputes
 * them (and the hours around them) from the readings. The service refreshes in the background and, before it
 * answers from rollups, the asked meter's dirty hours: answers are exact, and the write path pays one small
 * INSERT per batch (recomputing in the trigger itself made bench:ingest ~30x slower). Late and out-of-order
 * readings need nothing special.
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
        max_gap_ms bigint  NOT NULL CHECK (max_gap_ms > 0),
        -- Readings before this were dropped by retention (null: none were): their hours are never recomputed.
        raw_since  timestamptz
      )`);
    await queryRunner.query(`INSERT INTO rollup_settings (max_gap_ms) VALUES (150000)`);
    await queryRunner.query(`
      CREATE TABLE rollup_dirty (
        meter_id varchar(50) NOT NULL,
        hour     timestamptz NOT NULL,
        CONSTRAINT rollup_dirty_pkey PRIMARY KEY (meter_id, hour)
      )`);
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
    await queryRunner.query(ROLLUP_REFRESH);
    await queryRunner.query(TRIGGER_FUNCTIONS);
    await createRollupTriggers(queryRunner);
    // Readings already stored: every hour that has one, then every day.
    await queryRunner.query(`SELECT readings_rollup_rebuild()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await dropRollupTriggers(queryRunner);
    await queryRunner.query(`DROP FUNCTION readings_rollup_changed, readings_rollup_updated, readings_rollup_truncated`);
    await queryRunner.query(`DROP FUNCTION readings_rollup_rebuild(varchar[]), readings_rollup_refresh, readings_rollup_days, readings_rollup_hours`);
    await queryRunner.query(`DROP TABLE rollup_dirty, readings_daily, readings_hourly, rollup_settings`);
  }
}

/**
 * The statement triggers that mark the hours a write touched (TRIGGER_FUNCTIONS) on the readings table; also used
 * by the PartitionReadings migration, which moves them to the partitioned table.
 */
export async function createRollupTriggers(queryRunner: QueryRunner): Promise<void> {
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
}

export async function dropRollupTriggers(queryRunner: QueryRunner): Promise<void> {
  for (const trigger of ['insert', 'delete', 'update', 'truncate']) {
    await queryRunner.query(`DROP TRIGGER readings_rollup_${trigger} ON readings`);
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
  ),
  gaps AS (
    SELECT meter_id, day, array_agg(f ORDER BY f) AS gap_from, array_agg(t ORDER BY f) AS gap_to
      FROM (SELECT h.meter_id, h.day, g.f, g.t, row_number() OVER (PARTITION BY h.meter_id, h.day ORDER BY g.f) AS n
              FROM hours h CROSS JOIN LATERAL unnest(h.gap_from_ms, h.gap_to_ms) AS g(f, t)) listed
     WHERE n <= 100
     GROUP BY meter_id, day
  ),
  merged AS (
    SELECT meter_id, day, sum(readings) AS readings, min(first_at) AS first_at, max(last_at) AS last_at,
           sum(current_sum) AS current_sum, min(current_min) AS current_min, max(current_max) AS current_max,
           (array_agg(current_last ORDER BY bucket_start DESC))[1] AS current_last,
           sum(current_held) + coalesce(sum(edge_held), 0) AS current_held,
           sum(consumption_kwh) AS consumption_kwh, sum(resets) AS resets, sum(misreads) AS misreads,
           (array_agg(from_at ORDER BY bucket_start))[1] AS from_at,
           (array_agg(from_energy ORDER BY bucket_start))[1] AS from_energy,
           (array_agg(to_at ORDER BY bucket_start DESC) FILTER (WHERE to_at IS NOT NULL))[1] AS to_at,
           (array_agg(to_energy ORDER BY bucket_start DESC) FILTER (WHERE to_at IS NOT NULL))[1] AS to_energy,
           sum(span_ms) AS span_ms, sum(covered_ms) AS covered_ms, sum(gap_count) AS gap_count,
           CASE WHEN min(max_gap_ms) = max(max_gap_ms) THEN min(max_gap_ms) ELSE 0 END AS max_gap_ms
      FROM hours
     GROUP BY meter_id, day
  )
  SELECT m.meter_id, m.day, m.readings, m.first_at, m.last_at, m.current_sum, m.current_min, m.current_max,
         m.current_last, m.current_held, m.consumption_kwh, m.resets, m.misreads, m.from_at, m.from_energy,
         m.to_at, m.to_energy, m.span_ms, m.covered_ms, m.gap_count,
         coalesce(g.gap_from, '{}'), coalesce(g.gap_to, '{}'), m.max_gap_ms
    FROM merged m LEFT JOIN gaps g ON g.meter_id = m.meter_id AND g.day = m.day;
$fn$`;

/**
 * Brings a meter's rollups (p_meter), or those of up to p_limit dirty hours of any meters (p_meter null), up to
 * date. A dirty hour is one where a reading was written or removed. A changed reading r changes the figures of r,
 * the reading before it and the two after it (counter.ts), so the hours recomputed are the dirty hour, the hour of
 * the last reading before it and those of the first two readings after it (as the table is now), then the days
 * of all those hours.
 *
 * Meters are locked first, in one order (a transaction-level advisory lock per meter), and only then are their
 * dirty rows taken: two refreshes of one meter run one after the other, and a reading committed meanwhile is
 * either seen by the recomputation or leaves its dirty row for the next refresh. Returns the dirty rows taken.
 */
const ROLLUP_REFRESH = `
CREATE FUNCTION readings_rollup_refresh(p_meter varchar, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
  v_locked varchar[];
  v_dirty integer;
  v_meters varchar[];
  v_hours timestamptz[];
  v_days timestamptz[];
  v_since timestamptz := coalesce((SELECT raw_since FROM rollup_settings), '-infinity');
BEGIN
  IF p_meter IS NOT NULL THEN
    PERFORM 1 FROM rollup_dirty WHERE meter_id = p_meter LIMIT 1;
    IF NOT FOUND THEN RETURN 0; END IF;
    v_locked := ARRAY[p_meter];
  ELSE
    SELECT array_agg(DISTINCT meter_id) INTO v_locked FROM (SELECT meter_id FROM rollup_dirty LIMIT p_limit) d;
    IF v_locked IS NULL THEN RETURN 0; END IF;
  END IF;
  PERFORM pg_advisory_xact_lock(4242, hashtext(m)) FROM (SELECT m FROM unnest(v_locked) AS m ORDER BY m) s;
  WITH taken AS (DELETE FROM rollup_dirty WHERE meter_id = ANY(v_locked) RETURNING meter_id, hour),
  touched AS (
    SELECT meter_id, hour FROM taken
    UNION
    SELECT t.meter_id, date_trunc('hour', a.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
      FROM taken t
     CROSS JOIN LATERAL (
           (SELECT taken_at FROM readings r WHERE r.meter_id = t.meter_id AND r.taken_at < t.hour
             ORDER BY r.taken_at DESC LIMIT 1)
           UNION ALL
           (SELECT taken_at FROM readings r WHERE r.meter_id = t.meter_id AND r.taken_at >= t.hour + interval '1 hour'
             ORDER BY r.taken_at LIMIT 2)
         ) a(at)
  )
  -- An hour whose readings retention dropped keeps its rollup: a late reading stored for it (in the default
  -- partition) would otherwise replace the rollup of the whole hour with a rollup of that one reading.
  SELECT (SELECT count(*) FROM taken), array_agg(meter_id), array_agg(hour) INTO v_dirty, v_meters, v_hours
    FROM touched WHERE hour >= v_since;
  IF v_meters IS NULL THEN RETURN 0; END IF;
  PERFORM readings_rollup_hours(v_meters, v_hours);
  SELECT array_agg(meter_id), array_agg(day) INTO v_meters, v_days FROM (
    SELECT DISTINCT meter_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day
      FROM unnest(v_meters, v_hours) AS k(meter_id, hour)
  ) touched_days;
  PERFORM readings_rollup_days(v_meters, v_days);
  RETURN v_dirty;
END
$fn$`;

/** What a write does: mark the hours it touched dirty (one row per meter and hour, however many readings). */
const TRIGGER_FUNCTIONS = `
CREATE FUNCTION readings_rollup_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO rollup_dirty (meter_id, hour)
  SELECT DISTINCT meter_id, date_trunc('hour', taken_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM changed
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$fn$;
CREATE FUNCTION readings_rollup_updated() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO rollup_dirty (meter_id, hour)
  SELECT meter_id, date_trunc('hour', taken_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM changed_old
  UNION
  SELECT meter_id, date_trunc('hour', taken_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM changed
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$fn$;
CREATE FUNCTION readings_rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  TRUNCATE readings_hourly, readings_daily, rollup_dirty;
  RETURN NULL;
END
$fn$;
-- Every rollup of the given meters (null: all) from scratch, in one pass over their whole histories: the same
-- figures as readings_rollup_hours (the context of each reading is simply its neighbours in the full history).
-- For a migration, a bulk load, or after the gap threshold changed. The hours before a meter's oldest reading are
-- kept as they are: their readings are gone (retention dropped them) and the rollups are all that is left of them.
CREATE FUNCTION readings_rollup_rebuild(p_meters varchar[] DEFAULT NULL) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  v_max_gap bigint := (SELECT max_gap_ms FROM rollup_settings);
  v_since timestamptz := coalesce((SELECT raw_since FROM rollup_settings), '-infinity');
  v_meters varchar[];
  v_days timestamptz[];
BEGIN
  DELETE FROM rollup_dirty WHERE p_meters IS NULL OR meter_id = ANY(p_meters);
  DELETE FROM readings_hourly h
   WHERE (p_meters IS NULL OR h.meter_id = ANY(p_meters))
     AND h.bucket_start >= greatest(v_since, coalesce(
           (SELECT date_trunc('hour', min(r.taken_at) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
              FROM readings r WHERE r.meter_id = h.meter_id AND r.taken_at >= v_since),
           'infinity'));
  DELETE FROM readings_daily WHERE p_meters IS NULL OR meter_id = ANY(p_meters);
  INSERT INTO readings_hourly
  WITH win AS (
    SELECT meter_id, date_trunc('hour', taken_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, taken_at,
           current_a AS c, energy_kwh AS e, floor(extract(epoch FROM taken_at) * 1000)::bigint AS ms
      FROM readings WHERE (p_meters IS NULL OR meter_id = ANY(p_meters)) AND taken_at >= v_since
  ),
  neighbours AS (
    SELECT win.*,
           lag(e) OVER w AS e1, lag(e, 2) OVER w AS e2, lag(taken_at) OVER w AS at1, lag(taken_at, 2) OVER w AS at2,
           lag(ms) OVER w AS ms1, lag(ms, 2) OVER w AS ms2,
           lead(e) OVER w AS next_e, lead(ms) OVER w AS next_ms, lead(taken_at) OVER w AS next_at
      FROM win WINDOW w AS (PARTITION BY meter_id ORDER BY taken_at)
  ),
  kinds AS (
    SELECT neighbours.*, coalesce(e < e1 AND e < next_e AND next_e >= e1, false) AS misread FROM neighbours
  ),
  based AS (
    SELECT kinds.*,
           CASE WHEN lag(misread) OVER w THEN e2 ELSE e1 END AS base_e,
           CASE WHEN lag(misread) OVER w THEN at2 ELSE at1 END AS base_at,
           CASE WHEN lag(misread) OVER w THEN ms2 ELSE ms1 END AS base_ms
      FROM kinds WINDOW w AS (PARTITION BY meter_id ORDER BY taken_at)
  ),
  steps AS (
    SELECT based.*,
           CASE WHEN misread OR base_e IS NULL THEN 0 WHEN e >= base_e THEN e - base_e ELSE e END AS step,
           NOT misread AND base_e IS NOT NULL AND e < base_e AS reset,
           CASE WHEN NOT misread AND base_ms IS NOT NULL THEN ms - base_ms END AS pair_ms,
           CASE WHEN next_at < hour + interval '1 hour' THEN c * (next_ms - ms) ELSE 0 END AS held
      FROM based
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
  SELECT array_agg(meter_id), array_agg(day) INTO v_meters, v_days FROM (
    SELECT DISTINCT meter_id, date_trunc('day', bucket_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day
      FROM readings_hourly WHERE p_meters IS NULL OR meter_id = ANY(p_meters)
  ) s;
  IF v_meters IS NOT NULL THEN PERFORM readings_rollup_days(v_meters, v_days); END IF;
END
$fn$`;
