import { ApiProperty } from '@nestjs/swagger';

export class BulkRefusedRowDto {
  /** Position of the row in the request, from 0 (CSV: data rows after the header). */
  @ApiProperty({ example: 3 })
  row: number;
  @ApiProperty({ type: String, nullable: true, example: '1003' })
  meter_id: string | null;
  @ApiProperty({ type: [String], example: ['meter "1003" already exists'] })
  reasons: string[];
}

export class BulkResultDto {
  @ApiProperty({ example: 149 })
  created_count: number;
  @ApiProperty({ example: 1 })
  refused_count: number;
  /** meter_id of every row created. */
  @ApiProperty({ type: [String], example: ['1000', '1001'] })
  created: string[];
  @ApiProperty({ type: [BulkRefusedRowDto] })
  refused: BulkRefusedRowDto[];
}
