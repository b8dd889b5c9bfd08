import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiResponse, type OpenAPIObject } from '@nestjs/swagger';
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
    description: 'The body declares a charset or content encoding the service does not read',
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

/** A schema or a reference, as @nestjs/swagger types them (its interfaces are not exported). */
type SchemaOrReference = NonNullable<NonNullable<OpenAPIObject['components']>['schemas']>[string];

const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'] as const;

/**
 * What every route answers whatever its controller does, written into the document after it is built (as
 * documentAccess does for 401 and 429): the middleware in configureApp refuses a query parameter named after an
 * Object.prototype member and a body that is not JSON (400), a body over the limit (413) and an unreadable
 * charset or encoding (415) before any controller runs. 413 and 415 are listed where a body is taken.
 *
 * Every schema of the API is closed: request bodies by the ValidationPipe's forbidNonWhitelisted, responses by
 * their mappers. Saying so (additionalProperties: false) lets clients and the contract test rely on it.
 */
export function documentCommonResponses(document: OpenAPIObject): OpenAPIObject {
  for (const item of Object.values(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      operation.responses['400'] ??= errorResponse(400, {
        description:
          'A query parameter named after an Object.prototype member (constructor, __proto__, ...), or a body ' +
          'that is not valid JSON',
        message: 'query parameter "constructor" is not allowed',
      });
      if (operation.requestBody) {
        operation.responses['413'] ??= errorResponse(413);
        operation.responses['415'] ??= errorResponse(415);
      }
    }
  }
  for (const schema of Object.values(document.components?.schemas ?? {})) {
    if (!('properties' in schema) || !schema.properties) continue;
    schema.additionalProperties ??= false;
    for (const [name, property] of Object.entries(schema.properties)) {
      schema.properties[name] = nullableReference(property);
    }
  }
  return document;
}

/**
 * `nullable` only applies to the `type` beside it (OpenAPI 3.0.3), so the plugin's `{nullable, type: object,
 * allOf: [$ref]}` still demands an object: null fails the $ref'd schema. Spelt the way 3.0 can say it: the
 * reference, or null.
 */
function nullableReference(property: SchemaOrReference): SchemaOrReference {
  if (!('nullable' in property) || property.nullable !== true || property.allOf?.length !== 1) return property;
  const { allOf, ...rest } = property;
  return { ...rest, type: 'object', anyOf: [allOf[0], { type: 'object', nullable: true, enum: [null] }] };
}
