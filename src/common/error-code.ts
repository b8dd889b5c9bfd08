/**
 * The error code of a transport error (ECONNREFUSED, UND_ERR_SOCKET, HPE_...), looked for through its causes: undici
 * wraps the socket's error. Empty when there is none.
 */
export function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return '';
}
