import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiResponse } from '@nestjs/swagger';
import { STATUS_CODES } from 'node:http';

/** The one error shape (see AllExceptionsFilter), documented once. */
export class ErrorResponseDto {
  @ApiProperty({ type: 'integer', description: 'The HTTP status, repeated', example: 400 })
  statusCode: number;
  @ApiProperty({ description: "The status's reason phrase", example: 'Bad Request' })
  error: string;
  @ApiProperty({
    description: 'What went wrong; a list when several fields are wrong',
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    example: ['port must be an integer from 1 to 65535, given as a JSON number (not a string)'],
  })
  message: string | string[];
}

interface ErrorDoc {
  description: string;
  /** The message of the response's example: a real one the service sends. */
  message: string | string[];
}

const ERRORS: Record<number, ErrorDoc> = {
  400: {
    description: 'Invalid input: the message says which field and why',
    message: ['port must be an integer from 1 to 65535, given as a JSON number (not a string)'],
  },
  404: { description: 'No meter with that id', message: 'meter "345631237" does not exist' },
  409: {
    description: 'The meter id, or the address and port, are taken',
    message: 'meter "345631237" already exists',
  },
  413: { description: 'Request body larger than HTTP_BODY_LIMIT_BYTES (default 1 MiB)', message: 'request body is too large' },
  415: {
    description: 'The body is not JSON (for bulk, JSON or CSV), or declares a charset or content encoding the service does not read',
    message: 'unsupported content encoding or charset',
  },
  502: {
    description: 'The meter refused, answered non-2xx, redirected, sent a bad payload or another id',
    message: 'identity-mismatch: the meter answered with id "345631238"',
  },
  503: {
    description: 'The database is unreachable; try again later',
    message: 'the database is unreachable; try again later',
  },
  504: {
    description: 'The meter did not answer within POLL_TIMEOUT_MS',
    message: 'timeout: no complete answer within 5000 ms',
  },
};

/** A status with what this route means by it, where the common wording does not fit. */
export interface ApiErrorOverride extends Partial<ErrorDoc> {
  status: number;
}

/** The documented error response of a status: the common error body, with a real example of it. */
export function errorResponse(status: number, override: Partial<ErrorDoc> = {}) {
  const { description, message } = { ...(ERRORS[status] ?? { description: 'Error', message: 'error' }), ...override };
  return {
    description,
    content: {
      'application/json': {
        schema: { $ref: '#/components/schemas/ErrorResponseDto' },
        example: { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message },
      },
    },
  };
}

/** Documents the listed error statuses with the common error body and an example of it. */
export function ApiErrors(...errors: Array<number | ApiErrorOverride>): MethodDecorator {
  return applyDecorators(
    ...errors.map((error) => {
      const { status, ...override } = typeof error === 'number' ? { status: error } : error;
      const { description, content } = errorResponse(status, override);
      return ApiResponse({
        status,
        description,
        type: ErrorResponseDto,
        example: content['application/json'].example,
      });
    }),
  );
}
