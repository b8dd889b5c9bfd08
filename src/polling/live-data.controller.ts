import { Body, Controller, Get, Query } from '@nestjs/common';
import { ApiBody, ApiExtraModels, ApiOkResponse, ApiOperation, ApiTags, getSchemaPath } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors';
import { ApiMeterIdParam, MeterIdParam } from '../common/meter-id';
import { STATS_EXAMPLE, StatsQueryDto, StatsResponseDto } from '../readings/dto/stats.dto';
import { isStatsRequest, periodRequest } from '../readings/readings.controller';
import { StatsService } from '../readings/stats.service';
import { LIVE_READING_EXAMPLE, LiveReadingDto, toLiveReadingDto } from './dto/live-reading.dto';
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
  @ApiBody({
    type: StatsQueryDto,
    required: false,
    description: "The seed's form: start_date and end_date as a JSON body make this a statistics request",
    examples: { period: { summary: 'Three whole days', value: { start_date: '12-08-2023', end_date: '14-08-2023' } } },
  })
  @ApiOkResponse({
    description: 'The reading just taken (and stored); with dates, the statistics of the period',
    schema: { oneOf: [{ $ref: getSchemaPath(LiveReadingDto) }, { $ref: getSchemaPath(StatsResponseDto) }] },
    examples: {
      live: { summary: 'A live read', value: LIVE_READING_EXAMPLE },
      statistics: { summary: 'With start_date and end_date', value: STATS_EXAMPLE },
    },
  })
  @ApiErrors(
    {
      status: 400,
      description: 'The meter id in the path is malformed, or (with dates) a bound is missing or malformed',
      message: 'end_date "31-02-2023" is not a real calendar date',
    },
    404,
    502,
    { status: 503, description: 'The database is unreachable (the meter is looked up there first); try again later' },
    504,
  )
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
