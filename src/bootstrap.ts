import { INestApplication, Logger, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express, { NextFunction, Request, Response } from 'express';
import { AppModule } from './app.module';
import { AllExceptionsFilter, errorBody } from './common/http-exception.filter';
import { AppConfig } from './config/app-config';

/**
 * Builds the application exactly as it serves: used by main.ts and by the e2e tests, so that both see the same
 * pipes, error shape, body limits and Swagger document.
 */
export async function createApp(config: AppConfig, databaseUrl: string): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register({ config, databaseUrl }), {
    bodyParser: false,
    logger: ['log', 'warn', 'error'],
  });
  configureApp(app, config);
  return app;
}

export function configureApp(app: INestApplication, config: AppConfig): void {
  const express_ = app as NestExpressApplication;
  express_.disable('x-powered-by');
  // Bodies are JSON (or nothing). Parse errors are answered here with the API's error shape: they happen before
  // any route, where Nest's filters cannot see them.
  // Bulk registration carries tens of thousands of rows, as JSON or CSV: a larger limit for that route only.
  express_.use(
    '/meters/bulk',
    express.json({ limit: config.app.bulkBodyLimitBytes, strict: true, type: ['application/json', '+json'] }),
    express.text({ limit: config.app.bulkBodyLimitBytes, type: ['text/csv', 'text/plain'] }),
  );
  express_.use(express.json({ limit: config.app.bodyLimitBytes, strict: true, type: ['application/json', '+json'] }));
  express_.use((error: { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (!error) return next();
    const status = typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 400;
    const message =
      status === 413
        ? 'request body is too large'
        : status === 415
          ? 'unsupported content encoding or charset'
          : 'request body is not valid JSON';
    res.status(status).json(errorBody(status, message));
  });
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false },
      stopAtFirstError: true,
    }),
  );
  app.useGlobalFilters(new AllExceptionsFilter());
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Electric Meter')
      .setDescription(
        'Reads electricity meters on a local network over HTTP, keeps every reading in PostgreSQL, and answers ' +
          'how much energy a meter used in a period. Energy figures are kWh, current figures amperes, every ' +
          'number a JSON number. Errors are `{statusCode, error, message}`.',
      )
      .setVersion('0.1.0')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}

export const bootstrapLogger = new Logger('Bootstrap');
