import { runLayerComplianceSuite } from '@strata-cache/layer-test-suite';
import { SemanticLayer } from '../src/index.js';
import { HashEmbedder } from './helpers.js';

runLayerComplianceSuite({ name: 'semantic (hash embedder)', create: () => new SemanticLayer({ embedder: new HashEmbedder(64) }) });
