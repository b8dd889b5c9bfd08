import { Body, Controller, Get, Query } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors';
import { ApiMeterIdParam, MeterIdParam } from '../common/meter-id';
import { StatsQueryDto, StatsResponseDto } from './dto/stats.dto';
import { StatsService } from './stats.service';

@ApiTags('statistics')
@Controller('meters')
export class ReadingsController {
  constructor(private readonly statsService: StatsService) {}

  @Get(':meterId/stats')
  @ApiOperation({
    summary: 'Energy used, current and counter events in a period',
    description:
      'Bounds in the query string, or (the original service\'s form) as a JSON body on GET; the query string wins. ' +
      'A date-only end bound includes that whole day.',
  })
  @ApiMeterIdParam()
  @ApiBody({ type: StatsQueryDto, required: false })
  @ApiOkResponse({ type: StatsResponseDto })
  @ApiErrors(400, 404)
  stats(
    @MeterIdParam() meterId: string,
    @Query() query: StatsQueryDto,
    @Body() body: StatsQueryDto,
  ): Promise<StatsResponseDto> {
    return this.statsService.forPeriod(meterId, periodRequest(query, body));
  }
}

/** Query string first, JSON body second: the seed sent the body form, browsers and Swagger send the query. */
export function periodRequest(query: StatsQueryDto, body: StatsQueryDto | undefined) {
  return {
    startDate: query.start_date ?? body?.start_date,
    endDate: query.end_date ?? body?.end_date,
    timeZone: query.tz ?? body?.tz,
  };
}
