import { ApiProperty } from '@nestjs/swagger';
import { decimalToNumber } from '../../common/json-number';
import { NewReading } from '../../readings/readings.repository';

export class LiveReadingDto {
  @ApiProperty({ description: 'The meter read', example: '345631237' })
  meter_id: string;
  /** Present current in amperes. */
  @ApiProperty({ description: 'Present current in amperes', example: 37 })
  current_a: number;
  /** Cumulative energy counter in kWh (the meter's "kW" field). */
  @ApiProperty({ description: 'Cumulative energy counter in kWh (the meter\'s "kW" field)', example: 44325 })
  energy_kwh: number;
  /** The service's clock when the answer arrived (UTC). */
  @ApiProperty({
    description: "The service's clock when the answer arrived (UTC)",
    format: 'date-time',
    example: '2026-12-03T10:00:00.000Z',
  })
  taken_at: string;
}

export const LIVE_READING_EXAMPLE: LiveReadingDto = {
  meter_id: '345631237',
  current_a: 37,
  energy_kwh: 44325,
  taken_at: '2026-12-03T10:00:00.000Z',
};

export function toLiveReadingDto(reading: NewReading): LiveReadingDto {
  return {
    meter_id: reading.meterId,
    current_a: decimalToNumber(reading.currentA),
    energy_kwh: decimalToNumber(reading.energyKwh),
    taken_at: reading.takenAt.toISOString(),
  };
}
