/** Ports free right now on 127.0.0.1, outside the kernel's ephemeral range: see src/common/free-ports.ts. */
export { freePorts } from '../../src/common/free-ports';
