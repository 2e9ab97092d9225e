export { instrument, DEFAULT_DURATION_BUCKETS, BREAKER_STATES } from './instrument.js';
export type { InstrumentOptions, Instrumentation } from './instrument.js';
