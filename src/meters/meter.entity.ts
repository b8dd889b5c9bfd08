import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export const HEALTH_STATES = ['unknown', 'up', 'down'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

@Entity({ name: 'meters' })
export class Meter {
  @PrimaryColumn({ name: 'meter_id', type: 'varchar', length: 50 })
  meterId: string;

  @Column({ type: 'varchar', length: 200, nullable: true })
  name: string | null;

  /** Canonical IP literal (see canonicalAddress), so one address has one spelling. */
  @Column({ type: 'varchar', length: 45 })
  address: string;

  @Column({ type: 'integer' })
  port: number;

  @Column({ type: 'boolean', default: true })
  enabled: boolean;

  @Column({ name: 'health_state', type: 'varchar', length: 8, default: 'unknown' })
  healthState: HealthState;

  @Column({ name: 'last_attempt_at', type: 'timestamptz', nullable: true })
  lastAttemptAt: Date | null;

  @Column({ name: 'last_success_at', type: 'timestamptz', nullable: true })
  lastSuccessAt: Date | null;

  @Column({ name: 'last_error', type: 'varchar', length: 300, nullable: true })
  lastError: string | null;

  @Column({ name: 'consecutive_failures', type: 'integer', default: 0 })
  consecutiveFailures: number;

  @Column({ name: 'last_poll_duration_ms', type: 'integer', nullable: true })
  lastPollDurationMs: number | null;

  /** The newest stored reading, kept on the meter so that a meter and its latest reading are one row. */
  @Column({ name: 'last_reading_at', type: 'timestamptz', nullable: true })
  lastReadingAt: Date | null;

  @Column({ name: 'last_current_a', type: 'numeric', precision: 15, scale: 6, nullable: true })
  lastCurrentA: string | null;

  @Column({ name: 'last_energy_kwh', type: 'numeric', precision: 20, scale: 6, nullable: true })
  lastEnergyKwh: string | null;

  /** Set by the instance that claimed this meter for the current interval; others skip it until then. */
  @Column({ name: 'poll_claimed_until', type: 'timestamptz', nullable: true, select: false })
  pollClaimedUntil: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
