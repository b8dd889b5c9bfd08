import express, { NextFunction, Request, RequestHandler, Response } from 'express';
import { join } from 'node:path';

/** The dashboard's own files: next to this module in src/, copied next to its compiled code (nest-cli.json assets). */
export const DASHBOARD_DIR = join(__dirname, 'public');

/**
 * Files of npm packages the page loads, by the path it asks for. Served from node_modules, where the image's
 * production dependencies are: the CSP allows scripts of this origin only, so no CDN.
 */
export const VENDOR_FILES: Readonly<Record<string, string>> = {
  '/vendor/uPlot.esm.js': require.resolve('uplot/dist/uPlot.esm.js'),
  '/vendor/uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
};

/**
 * Serves the dashboard at `/`: static files for GET and HEAD only. A path that is not one of its files falls
 * through to the API's routes, so an unknown path is still the API's JSON 404 and no route can be shadowed by a
 * missing file. No directory redirects, no dotfiles; path tricks (`..`, bad encodings) fall through too.
 */
export function dashboard(): RequestHandler {
  const files = express.static(DASHBOARD_DIR, { index: 'index.html', redirect: false, dotfiles: 'ignore', fallthrough: true });
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const vendored = Object.hasOwn(VENDOR_FILES, req.path) ? VENDOR_FILES[req.path] : undefined;
    if (vendored === undefined) return files(req, res, next);
    res.sendFile(vendored, (error) => {
      if (error && !res.headersSent) next();
    });
  };
}
