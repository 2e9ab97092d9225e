import { runLayerComplianceSuite } from '@strata-cache/layer-test-suite';
import { MemoryLayer } from '../src/index.js';

runLayerComplianceSuite({ name: 'memory', create: () => new MemoryLayer({ maxEntries: 1_000 }) });
