import { Body, Controller, Get, Logger, Query, Req, Res } from '@nestjs/common';
import {
  ApiBody,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApiErrors } from '../common/api-errors';
import { ApiMeterIdParam, MeterIdParam } from '../common/meter-id';
import { CSV_HEADER, HISTORY_MAX_LIMIT, HistoryQueryDto, READINGS_PAGE_EXAMPLE, ReadingsPageDto } from './dto/history.dto';
import { STATS_EXAMPLE, StatsQueryDto, StatsResponseDto } from './dto/stats.dto';
import { ReadingsService } from './readings.service';
import { StatsRequest, StatsService } from './stats.service';

@Controller('meters')
export class ReadingsController {
  private readonly logger = new Logger(ReadingsController.name);

  constructor(
    private readonly statsService: StatsService,
    private readonly readingsService: ReadingsService,
  ) {}

  @Get(':meterId/stats')
  @ApiTags('statistics')
  @ApiOperation({
    summary: 'Energy used, current and counter events in a period, optionally per hour, day or month',
    description:
      'Bounds in the query string, or (the original service\'s form) as a JSON body on GET; the query string wins. ' +
      'A date-only end bound includes that whole day. With bucket=hour|day|month the answer adds a `buckets` ' +
      'series cut at local edges in `tz`, whose figures add up exactly to the period\'s.',
  })
  @ApiMeterIdParam()
  @ApiBody({
    type: StatsQueryDto,
    required: false,
    description: "The seed's form: the same parameters as a JSON body (the query string wins)",
    examples: { period: { summary: 'Three whole days', value: { start_date: '12-08-2023', end_date: '14-08-2023' } } },
  })
  @ApiOkResponse({ type: StatsResponseDto, description: 'The figures of the period', example: STATS_EXAMPLE })
  @ApiErrors(
    {
      status: 400,
      description: 'A bound is missing or malformed, start is after end, tz or bucket is unknown',
      message: 'end_date "31-02-2023" is not a real calendar date',
    },
    404,
    503,
  )
  stats(
    @MeterIdParam() meterId: string,
    @Query() query: StatsQueryDto,
    @Body() body: StatsQueryDto,
  ): Promise<StatsResponseDto> {
    return this.statsService.forPeriod(meterId, periodRequest(query, body));
  }

  @Get(':meterId/readings')
  @ApiTags('history')
  @ApiOperation({
    summary: 'Reading history, oldest or newest first, by cursor pages; or the whole range as CSV',
    description:
      `JSON pages of \`limit\` readings (default 100, at most ${HISTORY_MAX_LIMIT}); pass \`next_cursor\` as \`cursor\` ` +
      'for the next page. With Accept: text/csv or format=csv the same rows are streamed as CSV with the header ' +
      `\`${CSV_HEADER}\`: every row of the range unless \`limit\` is given, decimals exact as stored.`,
  })
  @ApiMeterIdParam()
  @ApiExtraModels(ReadingsPageDto)
  @ApiOkResponse({
    description: 'A page of readings (JSON), or the rows as CSV',
    content: {
      'application/json': { schema: { $ref: getSchemaPath(ReadingsPageDto) }, example: READINGS_PAGE_EXAMPLE },
      'text/csv': {
        schema: { type: 'string' },
        example: `${CSV_HEADER}\n1000,2023-08-12T00:00:31.000Z,37,44325\n1000,2023-08-12T00:01:31.000Z,36.5,44325.61\n`,
      },
    },
  })
  @ApiErrors(
    {
      status: 400,
      description: 'A bound, tz, limit, order, format or cursor is malformed',
      message: 'limit must be an integer from 1 to 10000',
    },
    404,
    503,
  )
  async history(
    @MeterIdParam() meterId: string,
    @Query() query: HistoryQueryDto,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    const csv = query.format ? query.format === 'csv' : request.accepts(['application/json', 'text/csv']) === 'text/csv';
    if (!csv) {
      response.json(await this.readingsService.page(meterId, query));
      return;
    }
    const chunks = await this.readingsService.csv(meterId, query);
    response.status(200);
    response.type('text/csv; charset=utf-8');
    response.setHeader('Content-Disposition', `attachment; filename="${meterId}-readings.csv"`);
    try {
      // One chunk in flight at a time: the next page is read only when the socket has taken the previous one.
      await pipeline(Readable.from(chunks, { highWaterMark: 1 }), response);
    } catch (error) {
      // Headers are sent: all that can be done is to cut the download short (pipeline destroyed the response).
      if ((error as { code?: string }).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
        this.logger.warn(`CSV export of meter ${meterId} stopped: ${(error as Error).message}`);
      }
    }
  }
}

/** Query string first, JSON body second: the seed sent the body form, browsers and Swagger send the query. */
export function periodRequest(query: StatsQueryDto, body: StatsQueryDto | undefined): StatsRequest {
  return {
    startDate: query.start_date ?? body?.start_date,
    endDate: query.end_date ?? body?.end_date,
    timeZone: query.tz ?? body?.tz,
    bucket: query.bucket ?? body?.bucket,
  };
}

/** Whether a /data request is the statistics form (any period parameter given), not a live read. */
export function isStatsRequest(request: StatsRequest): boolean {
  return request.startDate !== undefined || request.endDate !== undefined || request.bucket !== undefined;
}
