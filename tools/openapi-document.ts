/**
 * Writes the OpenAPI document the service serves at /docs-json to a file, for `npm run lint:openapi`.
 *
 * The application is built in Nest's preview mode: modules, controllers and the Swagger setup exactly as
 * configureApp does them, but no provider runs, so no database is needed. The document is fetched over HTTP from
 * the app's own /docs-json route, so it is the served one, not a copy built beside it (test/contract checks that
 * it equals what a fully started app serves). Run from dist/ after `nest build`, so that the Swagger CLI plugin
 * has added what it adds in production.
 */
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { AppModule } from '../src/app.module';
import { configureApp } from '../src/bootstrap';
import { loadConfig } from '../src/config/app-config';

/** Never contacted in preview mode: TypeORM's factory does not run. */
const UNUSED_DATABASE_URL = 'postgres://preview@127.0.0.1:1/preview';

/** The /docs-json document of the app built in preview mode (no database, no scheduler). */
export async function previewDocument(env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const config = loadConfig({ POLLING_ENABLED: 'false', ...env });
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register({ config, databaseUrl: UNUSED_DATABASE_URL }),
    { preview: true, bodyParser: false, logger: ['error'] },
  );
  configureApp(app, config);
  await app.init();
  // app.listen() refuses preview mode; the HTTP server it built listens all the same.
  const server = app.getHttpServer() as Server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/docs-json`);
    if (!response.ok) throw new Error(`/docs-json answered ${response.status}`);
    return (await response.json()) as Record<string, unknown>;
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await app.close();
  }
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) throw new Error('usage: openapi-document <output.json>');
  const document = await previewDocument();
  // Indented, so that a linter's line:column points somewhere readable.
  await writeFile(out, `${JSON.stringify(document, null, 2)}\n`);
  const operations = Object.values(document.paths as Record<string, object>).reduce(
    (count, item) => count + Object.keys(item).length,
    0,
  );
  console.log(`openapi-document: ${operations} operations written to ${out}`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
