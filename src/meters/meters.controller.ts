import { Body, Controller, Delete, Get, HttpCode, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
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
