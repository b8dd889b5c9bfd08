import { BadRequestException, Param, PipeTransform } from '@nestjs/common';
import { ApiParam } from '@nestjs/swagger';
import { applyDecorators } from '@nestjs/common';

export const METER_ID_PATTERN = /^[A-Za-z0-9._-]{1,50}$/;
export const METER_ID_RULE = 'a string of 1 to 50 characters of A-Z, a-z, 0-9, ".", "_" and "-"';

/** The 400 of a route with a meter id in its path, when that is all the route checks. */
export const METER_ID_400 = {
  status: 400,
  description: 'The meter id in the path is not 1 to 50 characters of A-Z, a-z, 0-9, ".", "_" and "-"',
  message: `meter_id in the path must be ${METER_ID_RULE}`,
};

class MeterIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (!METER_ID_PATTERN.test(value)) {
      throw new BadRequestException(`meter_id in the path must be ${METER_ID_RULE}`);
    }
    return value;
  }
}

/** Validates and documents the `{meter_id}` path parameter in one place. */
export function MeterIdParam(): ParameterDecorator {
  return Param('meterId', new MeterIdPipe());
}

export function ApiMeterIdParam(): MethodDecorator {
  return applyDecorators(
    ApiParam({ name: 'meterId', description: `The meter's id: ${METER_ID_RULE}`, example: '345631237' }),
  );
}
