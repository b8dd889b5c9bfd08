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
import { CSV_HEADER, HISTORY_MAX_LIMIT, HistoryQueryDto, ReadingsPageDto } from './dto/history.dto';
import { StatsQueryDto, StatsResponseDto } from './dto/stats.dto';
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
      'application/json': { schema: { $ref: getSchemaPath(ReadingsPageDto) } },
      'text/csv': {
        schema: {
          type: 'string',
          example: `${CSV_HEADER}\n1000,2023-08-12T00:00:31.000Z,37,44325\n1000,2023-08-12T00:01:31.000Z,36.5,44325.61\n`,
        },
      },
    },
  })
  @ApiErrors(400, 404)
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
