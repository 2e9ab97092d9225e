#!/usr/bin/env node
// The package's command. A committed file (not dist/) so that workspace installs can link it before a build.
import { main } from '../dist/cli.js';

void main(process.argv.slice(2)).then((code) => process.exit(code));
