// The Redis layer's command limits use core's deadline timers (see core's deadline-queue module:
// a limit starts when the command has been written, and its verdict waits one more loop turn).
export { DeadlineQueue, withTimeout } from '@strata-cache/core/layer-kit';
