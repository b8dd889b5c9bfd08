import { ApiProperty } from '@nestjs/swagger';

export class BulkRefusedRowDto {
  /** Position of the row in the request, from 0 (CSV: data rows after the header). */
  @ApiProperty({
    type: 'integer',
    description: 'Position of the row in the request, from 0 (CSV: data rows after the header)',
    example: 3,
  })
  row: number;
  @ApiProperty({ type: String, nullable: true, description: 'The row\'s meter_id, when it has a readable one', example: '1003' })
  meter_id: string | null;
  @ApiProperty({ type: [String], description: 'Why the row was refused', example: ['meter "1003" already exists'] })
  reasons: string[];
}

export class BulkResultDto {
  @ApiProperty({ type: 'integer', description: 'Rows registered', example: 149 })
  created_count: number;
  @ApiProperty({ type: 'integer', description: 'Rows refused', example: 1 })
  refused_count: number;
  /** meter_id of every row created. */
  @ApiProperty({ type: [String], description: 'meter_id of every row registered', example: ['1000', '1001'] })
  created: string[];
  @ApiProperty({ type: [BulkRefusedRowDto], description: 'Every refused row with its reasons' })
  refused: BulkRefusedRowDto[];
}
