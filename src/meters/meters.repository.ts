import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, QueryFailedError, Repository } from 'typeorm';
import { MeterConflictError } from '../common/errors';
import { MeterSource, SAME_SOURCE } from '../common/meter-source';
import { HealthState, Meter } from './meter.entity';

export interface NewMeter {
  meterId: string;
  address: string;
  port: number;
  name: string | null;
  enabled: boolean;
}

export type MeterChanges = Partial<Pick<Meter, 'address' | 'port' | 'name' | 'enabled' | 'pollClaimedUntil'>>;

/** What the poller needs of a meter: where it is and who it claims to be. */
export interface PollTarget {
  meterId: string;
  address: string;
  port: number;
}

/** One poll's effect on a meter's health, written for a whole batch in one statement. */
export interface HealthUpdate {
  meterId: string;
  ok: boolean;
  attemptedAt: Date;
  durationMs: number;
  error: string | null;
  /** The reading this poll stored, when it succeeded. */
  reading: { takenAt: Date; currentA: string; energyKwh: string } | null;
  /** Where the meter was read: the health is not recorded on a meter registered elsewhere since. */
  source?: MeterSource;
}

export interface MeterListQuery {
  state?: HealthState;
  enabled?: boolean;
  limit: number;
  offset: number;
}

@Injectable()
export class MetersRepository {
  constructor(@InjectRepository(Meter) private readonly meters: Repository<Meter>) {}

  async insert(meter: NewMeter): Promise<Meter> {
    try {
      // Read back in the same transaction: a DELETE racing the create cannot remove the row in between.
      return await retryOnDeadlock(() =>
        this.meters.manager.transaction(async (manager) => {
          await manager.insert(Meter, meter);
          return manager.findOneByOrFail(Meter, { meterId: meter.meterId });
        }),
      );
    } catch (error) {
      throw toConflict(error, meter) ?? error;
    }
  }

  /**
   * Inserts many meters in one statement; rows that collide with a registered meter (id, or address and port)
   * are skipped. Returns the ids inserted and, of the rest, the ids that were already registered.
   */
  async insertMany(meters: readonly NewMeter[]): Promise<{ inserted: Set<string>; existingIds: Set<string> }> {
    if (meters.length === 0) return { inserted: new Set(), existingIds: new Set() };
    const rows: { meter_id: string }[] = await this.meters.query(
      `INSERT INTO meters (meter_id, address, port, name, enabled)
       SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::integer[], $4::varchar[], $5::boolean[])
       ON CONFLICT DO NOTHING
       RETURNING meter_id`,
      [
        meters.map((m) => m.meterId),
        meters.map((m) => m.address),
        meters.map((m) => m.port),
        meters.map((m) => m.name),
        meters.map((m) => m.enabled),
      ],
    );
    const inserted = new Set(rows.map((row) => row.meter_id));
    const skipped = meters.filter((m) => !inserted.has(m.meterId)).map((m) => m.meterId);
    const existing: { meter_id: string }[] =
      skipped.length === 0
        ? []
        : await this.meters.query('SELECT meter_id FROM meters WHERE meter_id = ANY($1::varchar[])', [skipped]);
    return { inserted, existingIds: new Set(existing.map((row) => row.meter_id)) };
  }

  /** Ports registered at an address within a range, with the meter at each. */
  async portsAt(address: string, from: number, to: number): Promise<Map<number, string>> {
    const rows: { port: number; meter_id: string }[] = await this.meters.query(
      'SELECT port, meter_id FROM meters WHERE address = $1 AND port BETWEEN $2 AND $3',
      [address, from, to],
    );
    return new Map(rows.map((row) => [row.port, row.meter_id]));
  }

  findById(meterId: string): Promise<Meter | null> {
    return this.meters.findOneBy({ meterId });
  }

  async list(query: MeterListQuery): Promise<{ items: Meter[]; total: number }> {
    const where: Partial<Pick<Meter, 'healthState' | 'enabled'>> = {};
    if (query.state) where.healthState = query.state;
    if (query.enabled !== undefined) where.enabled = query.enabled;
    const [items, total] = await this.meters.findAndCount({
      where,
      order: { meterId: 'ASC' },
      take: query.limit,
      skip: query.offset,
    });
    return { items, total };
  }

  /** Applies the changes and returns the meter as it is now, or null when it does not exist. */
  async update(meterId: string, changes: MeterChanges): Promise<Meter | null> {
    try {
      // The row stays locked until the read: the answer is the row this change made, even with a DELETE racing.
      return await retryOnDeadlock(() =>
        this.meters.manager.transaction(async (manager) => {
          // Moves take turns: two meters trading ports at once would each wait on the other's unique-index entry
          // (a deadlock PostgreSQL breaks only after a second). Serialized, the second sees the first and conflicts.
          if (changes.address !== undefined || changes.port !== undefined) {
            await manager.query('SELECT pg_advisory_xact_lock($1)', [MOVE_LOCK_KEY]);
          }
          // now() would be this transaction's start, which can precede the creation of the row it changes.
          const result = await manager.update(Meter, { meterId }, { ...changes, updatedAt: () => 'clock_timestamp()' });
          if (result.affected === 0) return null;
          return manager.findOneBy(Meter, { meterId });
        }),
      );
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // A move that gives only the port (or only the address) collides at the meter's other, unchanged half.
      const current = changes.address === undefined || changes.port === undefined ? await this.findById(meterId) : null;
      const address = changes.address ?? current?.address;
      const port = changes.port ?? current?.port;
      throw address === undefined || port === undefined
        ? new MeterConflictError('another meter is already registered at that address and port')
        : (toConflict(error, { meterId, address, port }) ?? error);
    }
  }

  /**
   * Removes the meter, its readings and its rollups in one transaction. The meter row goes first: a batch write
   * holding it (FOR KEY SHARE) is waited for, and the readings it stored are then seen and removed; later batches
   * skip it. The rollups go explicitly: those of months whose readings retention dropped have no reading left to
   * take them along, and a meter registered again under the id would inherit them.
   */
  async delete(meterId: string): Promise<boolean> {
    return this.meters.manager.transaction(async (manager) => {
      const [, deleted]: [unknown, number] = await manager.query('DELETE FROM meters WHERE meter_id = $1', [meterId]);
      if (deleted === 0) return false;
      await manager.query('DELETE FROM readings WHERE meter_id = $1', [meterId]);
      for (const table of ['readings_hourly', 'readings_daily', 'rollup_dirty']) {
        await manager.query(`DELETE FROM ${table} WHERE meter_id = $1`, [meterId]);
      }
      return true;
    });
  }

  /**
   * Claims the enabled meters nobody has claimed for this interval, atomically: instances sharing the database
   * never poll the same meter in the same interval (SKIP LOCKED lets them claim side by side without waiting).
   */
  async claimDue(claimForMs: number): Promise<PollTarget[]> {
    // TypeORM answers an UPDATE with [rows, affected].
    const [rows]: [{ meter_id: string; address: string; port: number }[], number] = await this.meters.query(
      `UPDATE meters m
          SET poll_claimed_until = now() + make_interval(secs => $1::double precision / 1000)
        WHERE m.meter_id IN (
              SELECT meter_id FROM meters
               WHERE enabled AND (poll_claimed_until IS NULL OR poll_claimed_until <= now())
               FOR UPDATE SKIP LOCKED)
      RETURNING m.meter_id, m.address, m.port`,
      [claimForMs],
    );
    return rows.map((row) => ({ meterId: row.meter_id, address: row.address, port: row.port }));
  }

  async findTarget(meterId: string): Promise<PollTarget | null> {
    const meter = await this.meters.findOne({ where: { meterId }, select: { meterId: true, address: true, port: true } });
    return meter && { meterId: meter.meterId, address: meter.address, port: meter.port };
  }

  /** Writes the health of a batch of polls in one statement; meters deleted meanwhile are skipped. */
  async recordHealth(updates: readonly HealthUpdate[], manager: EntityManager = this.meters.manager): Promise<void> {
    if (updates.length === 0) return;
    await manager.query(
      `UPDATE meters m SET
          health_state          = CASE WHEN u.ok THEN 'up' ELSE 'down' END,
          last_attempt_at       = u.attempted_at,
          last_success_at       = CASE WHEN u.ok THEN u.attempted_at ELSE m.last_success_at END,
          last_error            = CASE WHEN u.ok THEN m.last_error ELSE u.error END,
          consecutive_failures  = CASE WHEN u.ok THEN 0 ELSE m.consecutive_failures + 1 END,
          last_poll_duration_ms = u.duration_ms,
          last_reading_at       = COALESCE(u.taken_at, m.last_reading_at),
          last_current_a        = CASE WHEN u.taken_at IS NULL THEN m.last_current_a ELSE u.current_a END,
          last_energy_kwh       = CASE WHEN u.taken_at IS NULL THEN m.last_energy_kwh ELSE u.energy_kwh END
        FROM unnest($1::varchar[], $2::boolean[], $3::timestamptz[], $4::integer[], $5::varchar[],
                    $6::timestamptz[], $7::numeric[], $8::numeric[], $9::varchar[], $10::integer[])
             AS u(meter_id, ok, attempted_at, duration_ms, error, taken_at, current_a, energy_kwh, address, port)
       WHERE m.meter_id = u.meter_id
         AND ${SAME_SOURCE('u')}
         AND (m.last_attempt_at IS NULL OR m.last_attempt_at <= u.attempted_at)`,
      [
        updates.map((u) => u.meterId),
        updates.map((u) => u.ok),
        updates.map((u) => u.attemptedAt.toISOString()),
        updates.map((u) => Math.round(u.durationMs)),
        updates.map((u) => (u.error === null ? null : u.error.slice(0, 300))),
        updates.map((u) => u.reading?.takenAt.toISOString() ?? null),
        updates.map((u) => u.reading?.currentA ?? null),
        updates.map((u) => u.reading?.energyKwh ?? null),
        updates.map((u) => u.source?.address ?? null),
        updates.map((u) => u.source?.port ?? null),
      ],
    );
  }

  async countByState(): Promise<Record<HealthState, number>> {
    const rows: { health_state: HealthState; count: string }[] = await this.meters.query(
      `SELECT health_state, count(*) AS count FROM meters GROUP BY health_state`,
    );
    const counts: Record<HealthState, number> = { unknown: 0, up: 0, down: 0 };
    for (const row of rows) counts[row.health_state] = Number(row.count);
    return counts;
  }
}

const UNIQUE_VIOLATION = '23505';
const DEADLOCK_DETECTED = '40P01';
/** Advisory lock taken by every change of a meter's address or port (distinct from the migration lock's key). */
const MOVE_LOCK_KEY = 0x4d4f5645; // 'MOVE'

/**
 * Runs a change again when PostgreSQL chose it as a deadlock victim (moves take turns, but a move can still wait
 * in a cycle with a bulk insert over the same addresses): the retry sees the other change committed and succeeds
 * or conflicts (409).
 */
async function retryOnDeadlock<T>(work: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const code = error instanceof QueryFailedError ? (error.driverError as { code?: string }).code : undefined;
      if (code !== DEADLOCK_DETECTED || attempt >= attempts) throw error;
    }
  }
}

function isUniqueViolation(error: unknown): boolean {
  return error instanceof QueryFailedError && (error.driverError as { code?: string }).code === UNIQUE_VIOLATION;
}

function toConflict(error: unknown, meter: Pick<NewMeter, 'meterId' | 'address' | 'port'>): MeterConflictError | null {
  if (!(error instanceof QueryFailedError) || !isUniqueViolation(error)) return null;
  const driverError = error.driverError as { code?: string; constraint?: string };
  if (driverError.constraint === 'meters_address_port_key') {
    return new MeterConflictError(`another meter is already registered at ${meter.address} port ${meter.port}`);
  }
  return new MeterConflictError(`meter "${meter.meterId}" already exists`);
}
