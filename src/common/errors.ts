/**
 * Domain errors, thrown by services with no HTTP in sight (the poller runs them with no request around).
 * DomainExceptionFilter maps each to its status.
 */
export abstract class DomainError extends Error {
  abstract readonly status: number;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends DomainError {
  readonly status = 404;
}

export class MeterNotFoundError extends NotFoundError {
  constructor(readonly meterId: string) {
    super(`meter "${meterId}" does not exist`);
  }
}

export class MeterConflictError extends DomainError {
  readonly status = 409;
}

export class InvalidInputError extends DomainError {
  readonly status = 400;
}

export class AddressNotAllowedError extends DomainError {
  readonly status = 400;
}

/** Why a meter could not be read. `timeout` maps to 504, the rest to 502. */
export type MeterFailureKind =
  | 'timeout'
  | 'refused'
  | 'network'
  | 'http-status'
  | 'redirect'
  | 'too-large'
  | 'bad-payload'
  | 'identity-mismatch'
  | 'not-allowed';

export class MeterReadError extends DomainError {
  readonly status: number;
  constructor(
    readonly kind: MeterFailureKind,
    message: string,
  ) {
    super(message);
    this.status = kind === 'timeout' ? 504 : 502;
  }
}

/** The database cannot be reached for something only it can answer (503: try again later). */
export class DatabaseUnavailableError extends DomainError {
  readonly status = 503;
  constructor() {
    super('the database is unreachable; try again later');
  }
}
