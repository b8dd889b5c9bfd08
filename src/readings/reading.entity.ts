import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * One answer of one meter. The key (meter_id, taken_at) is the only index: it covers current and energy so a
 * period's statistics read the index alone. Decimal columns come back from `pg` as strings, on purpose: exact.
 */
@Entity({ name: 'readings' })
export class Reading {
  @PrimaryColumn({ name: 'meter_id', type: 'varchar', length: 50 })
  meterId: string;

  @PrimaryColumn({ name: 'taken_at', type: 'timestamptz' })
  takenAt: Date;

  @Column({ name: 'current_a', type: 'numeric', precision: 15, scale: 6 })
  currentA: string;

  @Column({ name: 'energy_kwh', type: 'numeric', precision: 20, scale: 6 })
  energyKwh: string;
}
