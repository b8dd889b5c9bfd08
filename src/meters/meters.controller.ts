import { Body, Controller, Delete, Get, Headers, HttpCode, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
  ApiExtraModels,
} from '@nestjs/swagger';
import { csvRecords, CsvError } from '../common/csv';
import { InvalidInputError } from '../common/errors';
import { BulkResultDto } from './dto/bulk.dto';
import { ApiErrors } from '../common/api-errors';
import { ApiMeterIdParam, MeterIdParam } from '../common/meter-id';
import {
  CreateMeterDto,
  ListMetersQueryDto,
  MeterListResponseDto,
  MeterResponseDto,
  toMeterResponse,
  UpdateMeterDto,
} from './dto/meter.dto';
import { MetersService } from './meters.service';

@ApiTags('meters')
@Controller('meters')
export class MetersController {
  constructor(private readonly meters: MetersService) {}

  @Post()
  @ApiOperation({ summary: 'Register a meter' })
  @ApiCreatedResponse({ type: MeterResponseDto })
  @ApiErrors(400, 409, 413)
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
  })
  @ApiExtraModels(CreateMeterDto)
  @ApiConsumes('application/json', 'text/csv')
  @ApiBody({
    schema: { type: 'array', items: { $ref: getSchemaPath(CreateMeterDto) } },
    examples: {
      json: { value: [{ meter_id: '9000', address: '127.0.0.1', port: 9000 }] },
      csv: { value: 'meter_id,address,port\n9000,127.0.0.1,9000\n9001,127.0.0.1,9001\n' },
    },
  })
  @ApiOkResponse({ type: BulkResultDto })
  @ApiErrors(400, 413)
  bulk(@Body() body: unknown, @Headers('content-type') contentType: string | undefined): Promise<BulkResultDto> {
    return this.meters.bulkCreate(bulkRows(body, contentType));
  }

  @Get()
  @ApiOperation({ summary: 'List meters, filtered by health state or enabled, paginated by limit and offset' })
  @ApiOkResponse({ type: MeterListResponseDto })
  @ApiErrors(400)
  async list(@Query() query: ListMetersQueryDto): Promise<MeterListResponseDto> {
    const { items, total } = await this.meters.list(query);
    return { items: items.map(toMeterResponse), total, limit: query.limit, offset: query.offset };
  }

  @Get(':meterId')
  @ApiOperation({ summary: 'One meter with its health and latest reading' })
  @ApiMeterIdParam()
  @ApiOkResponse({ type: MeterResponseDto })
  @ApiErrors(400, 404)
  async get(@MeterIdParam() meterId: string): Promise<MeterResponseDto> {
    return toMeterResponse(await this.meters.get(meterId));
  }

  @Patch(':meterId')
  @ApiOperation({ summary: 'Change address, port, name or enabled (enabled=false stops polling, keeps history)' })
  @ApiMeterIdParam()
  @ApiOkResponse({ type: MeterResponseDto })
  @ApiErrors(400, 404, 409, 413)
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
  @ApiErrors(400, 404)
  async remove(@MeterIdParam() meterId: string): Promise<void> {
    await this.meters.remove(meterId);
  }
}

/** The rows of a bulk request: a JSON array as it is, or CSV records with port and enabled typed. */
function bulkRows(body: unknown, contentType: string | undefined): unknown[] {
  if (/^text\/(csv|plain)\b/i.test(contentType ?? '')) {
    if (typeof body !== 'string') throw new InvalidInputError('CSV body expected');
    let records: Record<string, string>[];
    try {
      records = csvRecords(body, {
        required: ['meter_id', 'address', 'port'],
        allowed: ['meter_id', 'address', 'port', 'name', 'enabled'],
      });
    } catch (error) {
      throw new InvalidInputError(`CSV body is malformed: ${error instanceof CsvError ? error.message : 'unreadable'}`);
    }
    return records.map(typedCsvRecord);
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
