import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiResponse } from '@nestjs/swagger';

/** The one error shape (see AllExceptionsFilter), documented once. */
export class ErrorResponseDto {
  @ApiProperty({ example: 400 })
  statusCode: number;
  @ApiProperty({ example: 'Bad Request' })
  error: string;
  @ApiProperty({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    example: ['port must not be greater than 65535'],
  })
  message: string | string[];
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input: the message says which field and why',
  404: 'No meter with that id',
  409: 'The meter id, or the address and port, are taken',
  413: 'Request body too large',
  502: 'The meter refused, answered non-2xx, redirected, sent a bad payload or another id',
  504: 'The meter did not answer within POLL_TIMEOUT_MS',
};

/** Documents the listed error statuses with the common error body. */
export function ApiErrors(...statuses: number[]): MethodDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({ status, description: DESCRIPTIONS[status] ?? 'Error', type: ErrorResponseDto }),
    ),
  );
}
