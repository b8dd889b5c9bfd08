import { Body, Controller, Get, Query } from '@nestjs/common';
import { ApiBody, ApiExtraModels, ApiOkResponse, ApiOperation, ApiTags, getSchemaPath } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors';
import { ApiMeterIdParam, MeterIdParam } from '../common/meter-id';
import { StatsQueryDto, StatsResponseDto } from '../readings/dto/stats.dto';
import { isStatsRequest, periodRequest } from '../readings/readings.controller';
import { StatsService } from '../readings/stats.service';
import { LiveReadingDto, toLiveReadingDto } from './dto/live-reading.dto';
import { PollingService } from './polling.service';

@ApiTags('live data')
@ApiExtraModels(LiveReadingDto, StatsResponseDto)
@Controller('meters')
export class LiveDataController {
  constructor(
    private readonly polling: PollingService,
    private readonly stats: StatsService,
  ) {}

  @Get(':meterId/data')
  @ApiOperation({
    summary: 'Read the meter now and store the reading; with start_date/end_date, the period statistics instead',
    description:
      'Without dates: the meter is read now (sharing a poll already in flight), the reading is stored and returned. ' +
      'With start_date and end_date (query or JSON body, the original service\'s form): the same answer as /stats.',
  })
  @ApiMeterIdParam()
  @ApiBody({ type: StatsQueryDto, required: false })
  @ApiOkResponse({
    schema: { oneOf: [{ $ref: getSchemaPath(LiveReadingDto) }, { $ref: getSchemaPath(StatsResponseDto) }] },
  })
  @ApiErrors(400, 404, 502, 504)
  async data(
    @MeterIdParam() meterId: string,
    @Query() query: StatsQueryDto,
    @Body() body: StatsQueryDto,
  ): Promise<LiveReadingDto | StatsResponseDto> {
    const period = periodRequest(query, body);
    if (isStatsRequest(period)) {
      return this.stats.forPeriod(meterId, period);
    }
    return toLiveReadingDto(await this.polling.liveRead(meterId));
  }
}
