import { Body, Controller, Get, HttpCode, Param, ParseIntPipe, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBody, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors';
import { DiscoveryJobDto, DONE_SCAN_EXAMPLE, RUNNING_SCAN_EXAMPLE, StartDiscoveryDto } from './discovery.dto';
import { DiscoveryService } from './discovery.service';

@ApiTags('discovery')
@Controller('discovery')
export class DiscoveryController {
  constructor(private readonly discovery: DiscoveryService) {}

  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Scan an address over a port range and register what answers like a meter',
    description:
      'Every port is probed with bounded concurrency and the poll deadline; a port whose answer is a valid meter ' +
      'payload is registered with the id it reports as meter_id. The scan runs in the background: follow it at ' +
      'GET /discovery/{id}. One scan at a time (409 while one runs).',
  })
  @ApiBody({
    type: StartDiscoveryDto,
    examples: {
      seed: { summary: 'The seed network', value: { address: '127.0.0.1', port_from: 9000, port_to: 65000 } },
      paused: {
        summary: 'Register what answers, but do not poll it yet',
        value: { address: '192.168.1.20', port_from: 8000, port_to: 8099, enabled: false },
      },
    },
  })
  @ApiAcceptedResponse({ type: DiscoveryJobDto, description: 'The scan, started', example: RUNNING_SCAN_EXAMPLE })
  @ApiErrors(
    { status: 400, message: 'port_from must not be greater than port_to' },
    {
      status: 409,
      description: 'A scan is already running',
      message: 'a discovery scan is already running; wait for it to finish',
    },
  )
  start(@Body() body: StartDiscoveryDto): DiscoveryJobDto {
    return this.discovery.start(body);
  }

  @Get()
  @ApiOperation({ summary: 'The recent discovery scans, newest first' })
  @ApiOkResponse({ type: [DiscoveryJobDto], description: 'The scans kept, newest first', example: [DONE_SCAN_EXAMPLE] })
  list(): DiscoveryJobDto[] {
    return this.discovery.list();
  }

  @Get(':id')
  @ApiOperation({ summary: 'One discovery scan: progress, meters found, ports already known, ports not a meter' })
  @ApiParam({ name: 'id', description: 'Scan id from POST /discovery', example: 1 })
  @ApiOkResponse({ type: DiscoveryJobDto, description: 'The scan', example: DONE_SCAN_EXAMPLE })
  @ApiErrors(
    { status: 400, description: 'The scan id is not an integer', message: 'Validation failed (numeric string is expected)' },
    {
      status: 404,
      description: 'No scan with that id (the newest ones are kept)',
      message: 'discovery scan 7 does not exist (the last 20 are kept)',
    },
  )
  get(@Param('id', new ParseIntPipe({ errorHttpStatusCode: 400 })) id: number): DiscoveryJobDto {
    return this.discovery.get(id);
  }
}
