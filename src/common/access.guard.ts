import { CanActivate, ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AccessControl, challenge, requestAccess } from './access-control';

/**
 * Global guard: when API_KEY is set, refuses with 401 (and a WWW-Authenticate challenge) every request whose
 * route needs the key and that does not carry it, and every request that carries a wrong one (except /health and
 * /metrics, which are never checked). Runs before the pipes, so a refused request is never validated
 * or acted on.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(@Inject(AccessControl) private readonly access: AccessControl) {}

  canActivate(context: ExecutionContext): boolean {
    if (!this.access.enabled) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<Request>();
    const access = requestAccess(request);
    if (access === 'open') return true;
    const verdict = this.access.verify(request.headers);
    // A read left open (API_READ_OPEN) is served without a key, but a wrong key is still refused: the client
    // learns of its mistake before its first write.
    if (verdict === 'ok' || (verdict === 'missing' && !this.access.needsKey(access))) return true;
    const { header, message } = challenge(verdict);
    http.getResponse<Response>().setHeader('WWW-Authenticate', header);
    throw new UnauthorizedException(message);
  }
}
