import { Body, Controller, Delete, Get, Headers, HttpCode, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBody,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
  ApiExtraModels,
} from '@nestjs/swagger';
import { CsvError, CsvRecord, csvRecords } from '../common/csv';
import { InvalidInputError } from '../common/errors';
import { BulkResultDto } from './dto/bulk.dto';
import { ApiErrors } from '../common/api-errors';
import { ApiMeterIdParam, METER_ID_400, MeterIdParam } from '../common/meter-id';
import {
  CreateMeterDto,
  ListMetersQueryDto,
  MeterListResponseDto,
  METER_EXAMPLE,
  MeterResponseDto,
  NEW_METER_EXAMPLE,
  toMeterResponse,
  UpdateMeterDto,
} from './dto/meter.dto';
import { MetersService, RefusedRow } from './meters.service';

@ApiTags('meters')
@Controller('meters')
export class MetersController {
  constructor(private readonly meters: MetersService) {}

  @Post()
  @ApiOperation({
    summary: 'Register a meter',
    description:
      'The address must be an IP literal inside METER_ALLOWED_NETWORKS (400 otherwise). The meter is polled from ' +
      'the next cycle on, unless enabled is false. Concurrent identical requests: one 201, the others 409.',
  })
  @ApiBody({
    type: CreateMeterDto,
    examples: {
      minimal: { summary: 'Id, address and port', value: { meter_id: '345631237', address: '127.0.0.1', port: 9000 } },
      full: {
        summary: 'With a name, not polled yet',
        value: { meter_id: '345631237', address: '192.168.1.20', port: 80, name: 'Workshop main feed', enabled: false },
      },
    },
  })
  @ApiCreatedResponse({ type: MeterResponseDto, description: 'Registered; not polled yet', example: NEW_METER_EXAMPLE })
  @ApiErrors(
    { status: 400, message: ['address 10.1.2.3 is outside METER_ALLOWED_NETWORKS'] },
    409,
    503,
  )
  async create(@Body() body: CreateMeterDto): Promise<MeterResponseDto> {
    const meter = await this.meters.create({
      meterId: body.meter_id,
      address: body.address,
      port: body.port,
      name: body.name,
      enabled: body.enabled,
    });
    return toMeterResponse(meter);
  }

  @Post('bulk')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Register many meters in one request (JSON array or CSV)',
    description:
      'Each row is validated like POST /meters; refused rows (bad field, taken id or address, duplicate in the ' +
      'request) are listed with their reasons and never block the others. CSV: a header line naming the columns ' +
      'meter_id,address,port[,name,enabled]; port is read as an integer, enabled as true/false.',
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: { type: 'array', items: { $ref: getSchemaPath(CreateMeterDto) } },
          example: [
            { meter_id: '9000', address: '127.0.0.1', port: 9000 },
            { meter_id: '9001', address: '127.0.0.1', port: 9001, name: 'Workshop', enabled: false },
          ],
        },
        'text/csv': {
          schema: { type: 'string' },
          example: 'meter_id,address,port,name,enabled\n9000,127.0.0.1,9000,,\n9001,127.0.0.1,9001,Workshop,false\n',
        },
      },
    },
  })
  @ApiExtraModels(CreateMeterDto)
  @ApiOkResponse({
    type: BulkResultDto,
    description: 'Which rows were registered and which were refused, and why',
    example: {
      created_count: 1,
      refused_count: 1,
      created: ['9000'],
      refused: [{ row: 1, meter_id: '9001', reasons: ['meter "9001" already exists'] }],
    },
  })
  @ApiErrors(
    { status: 400, message: 'body must be a JSON array of meters (or text/csv with a header line)' },
    { status: 413, description: 'Request body larger than HTTP_BULK_BODY_LIMIT_BYTES (default 32 MiB)' },
    503,
  )
  bulk(@Body() body: unknown, @Headers('content-type') contentType: string | undefined): Promise<BulkResultDto> {
    return this.meters.bulkCreate(bulkRows(body, contentType));
  }

  @Get()
  @ApiOperation({
    summary: 'List meters, filtered by health state or enabled, paginated by limit and offset',
    description: 'In meter_id order; `total` counts every meter that matches the filter.',
  })
  @ApiOkResponse({
    type: MeterListResponseDto,
    description: 'One page of meters',
    example: { items: [METER_EXAMPLE], total: 150, limit: 1, offset: 0 },
  })
  @ApiErrors({ status: 400, message: 'state must be one of unknown, up, down' }, 503)
  async list(@Query() query: ListMetersQueryDto): Promise<MeterListResponseDto> {
    const { items, total } = await this.meters.list(query);
    return { items: items.map(toMeterResponse), total, limit: query.limit, offset: query.offset };
  }

  @Get(':meterId')
  @ApiOperation({ summary: 'One meter with its health and latest reading' })
  @ApiMeterIdParam()
  @ApiOkResponse({ type: MeterResponseDto, description: 'The meter', example: METER_EXAMPLE })
  @ApiErrors(METER_ID_400, 404, 503)
  async get(@MeterIdParam() meterId: string): Promise<MeterResponseDto> {
    return toMeterResponse(await this.meters.get(meterId));
  }

  @Patch(':meterId')
  @ApiOperation({
    summary: 'Change address, port, name or enabled (enabled=false stops polling, keeps history)',
    description: 'Only the fields given change, with the same rules as on registration; name: null removes the name.',
  })
  @ApiMeterIdParam()
  @ApiBody({
    type: UpdateMeterDto,
    examples: {
      stop: { summary: 'Stop polling, keep the history', value: { enabled: false } },
      move: { summary: 'New address and port, name removed', value: { address: '192.168.1.21', port: 8080, name: null } },
    },
  })
  @ApiOkResponse({ type: MeterResponseDto, description: 'The meter as changed', example: { ...METER_EXAMPLE, enabled: false } })
  @ApiErrors(
    { status: 400, message: 'nothing to change: give at least one of address, port, name, enabled' },
    404,
    {
      status: 409,
      description: 'Another meter is registered at that address and port',
      message: 'another meter is already registered at 127.0.0.1 port 9001',
    },
    503,
  )
  async update(@MeterIdParam() meterId: string, @Body() body: UpdateMeterDto): Promise<MeterResponseDto> {
    const meter = await this.meters.update(meterId, {
      address: body.address,
      port: body.port,
      name: body.name,
      enabled: body.enabled,
    });
    return toMeterResponse(meter);
  }

  @Delete(':meterId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a meter and all its readings' })
  @ApiMeterIdParam()
  @ApiNoContentResponse({ description: 'Removed, with its readings' })
  @ApiErrors(METER_ID_400, 404, 503)
  async remove(@MeterIdParam() meterId: string): Promise<void> {
    await this.meters.remove(meterId);
  }
}

/** The rows of a bulk request: a JSON array as it is, or CSV records with port and enabled typed. */
function bulkRows(body: unknown, contentType: string | undefined): unknown[] {
  if (/^text\/(csv|plain)\b/i.test(contentType ?? '')) {
    if (typeof body !== 'string') throw new InvalidInputError('CSV body expected');
    let records: CsvRecord[];
    try {
      records = csvRecords(body, {
        required: ['meter_id', 'address', 'port'],
        allowed: ['meter_id', 'address', 'port', 'name', 'enabled'],
      });
    } catch (error) {
      throw new InvalidInputError(`CSV body is malformed: ${error instanceof CsvError ? error.message : 'unreadable'}`);
    }
    return records.map(({ values, extraCells }) =>
      extraCells > 0
        ? new RefusedRow(
            [`row has ${extraCells} more cell${extraCells === 1 ? '' : 's'} than the header line names (quote a name with a comma)`],
            values.meter_id ?? null,
          )
        : typedCsvRecord(values),
    );
  }
  if (!Array.isArray(body)) {
    throw new InvalidInputError('body must be a JSON array of meters (or text/csv with a header line)');
  }
  return body;
}

function typedCsvRecord(record: Record<string, string>): Record<string, unknown> {
  const typed: Record<string, unknown> = { ...record };
  if (record.port !== undefined && /^\d{1,5}$/.test(record.port.trim())) typed.port = Number(record.port.trim());
  // An empty cell is an absent value (CSV cannot tell them apart): the default applies.
  for (const [key, value] of Object.entries(record)) if (value.trim() === '') delete typed[key];
  if (typed.enabled !== undefined) {
    const enabled = record.enabled.trim().toLowerCase();
    typed.enabled = enabled === 'true' ? true : enabled === 'false' ? false : record.enabled;
  }
  if (typed.address !== undefined) typed.address = record.address.trim();
  return typed;
}
