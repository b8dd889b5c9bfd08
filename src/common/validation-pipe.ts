import { ArgumentMetadata, BadRequestException, ValidationPipe } from '@nestjs/common';

/**
 * The one ValidationPipe of the API, refusing first a JSON body that is not an object where the route reads a DTO.
 * class-validator takes an array for a list of DTOs and reported `[]` as a string field too long.
 */
export class ApiValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false },
      stopAtFirstError: true,
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && Array.isArray(value) && this.toValidate(metadata)) {
      throw new BadRequestException('request body must be a JSON object');
    }
    return super.transform(value, metadata);
  }
}
