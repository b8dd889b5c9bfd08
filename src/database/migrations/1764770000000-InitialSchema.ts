import { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1764770000000 implements MigrationInterface {
  name = 'InitialSchema1764770000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE meters (
        meter_id              varchar(50)  PRIMARY KEY CHECK (meter_id ~ '^[A-Za-z0-9._-]{1,50}$'),
        name                  varchar(200),
        address               varchar(45)  NOT NULL,
        port                  integer      NOT NULL CHECK (port BETWEEN 1 AND 65535),
        enabled               boolean      NOT NULL DEFAULT true,
        health_state          varchar(8)   NOT NULL DEFAULT 'unknown' CHECK (health_state IN ('unknown', 'up', 'down')),
        last_attempt_at       timestamptz,
        last_success_at       timestamptz,
        last_error            varchar(300),
        consecutive_failures  integer      NOT NULL DEFAULT 0,
        last_poll_duration_ms integer,
        last_reading_at       timestamptz,
        last_current_a        numeric(15, 6),
        last_energy_kwh       numeric(20, 6),
        poll_claimed_until    timestamptz,
        created_at            timestamptz  NOT NULL DEFAULT now(),
        updated_at            timestamptz  NOT NULL DEFAULT now(),
        CONSTRAINT meters_address_port_key UNIQUE (address, port)
      )`);
    await queryRunner.query(`CREATE INDEX meters_health_state_idx ON meters (health_state, meter_id)`);
    await queryRunner.query(`
      CREATE TABLE readings (
        meter_id   varchar(50)    NOT NULL REFERENCES meters (meter_id) ON DELETE CASCADE,
        taken_at   timestamptz    NOT NULL,
        current_a  numeric(15, 6) NOT NULL CHECK (current_a >= 0),
        energy_kwh numeric(20, 6) NOT NULL CHECK (energy_kwh >= 0),
        CONSTRAINT readings_pkey PRIMARY KEY (meter_id, taken_at) INCLUDE (current_a, energy_kwh)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE readings`);
    await queryRunner.query(`DROP TABLE meters`);
  }
}
