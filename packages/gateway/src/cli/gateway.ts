#!/usr/bin/env node
// strata-gateway --config strata.config.json
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { InvalidOptionError, MissingDependencyError } from '@strata-cache/core';
import { type Gateway, createGateway } from '../gateway.js';

const HELP = `Usage: strata-gateway --config <file> [--check]

A caching gateway for OpenAI- and Anthropic-compatible APIs.

  --config, -c <file>  the JSON config file (or STRATA_CONFIG)
  --check              validate the config and its secrets, print a summary, exit
  --version            print the version
  --help               this text

Signals: SIGTERM / SIGINT drain requests and streams, then stop; SIGHUP reloads the keys.`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: { config: { type: 'string', short: 'c' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
      strict: true,
    });
  } catch (error) {
    process.stderr.write(`strata-gateway: ${(error as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  const { values } = args;
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(pkg.version + '\n');
    return 0;
  }
  const path = values.config ?? process.env['STRATA_CONFIG'];
  if (!path) {
    process.stderr.write(`strata-gateway: --config <file> is required\n\n${HELP}\n`);
    return 2;
  }
  let gateway: Gateway;
  try {
    gateway = await createGateway({ config: path });
  } catch (error) {
    if (InvalidOptionError.isInstance(error) || MissingDependencyError.isInstance(error)) {
      process.stderr.write(`strata-gateway: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (values.check) {
    const c = gateway.config;
    process.stdout.write(
      `config ok: ${path}\n  listen  ${c.server.host}:${c.server.port}\n  admin   ${c.admin.port === false ? 'off' : `${c.admin.host}:${c.admin.port}`}\n  layers  ${gateway.cache.layerNames.join(', ')}\n  keys    ${c.keys.length} (${c.keys.filter((k) => k.revoked).length} revoked), tenants: ${[...new Set(c.keys.map((k) => k.tenant))].join(', ')}\n`,
    );
    await gateway.close();
    return 0;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      gateway.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    gateway.log.info({ signal }, 'signal received');
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`strata-gateway: shutdown failed: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    gateway.reload().catch((error: unknown) => gateway.log.error({ code: (error as { code?: string }).code }, `reload refused: ${(error as Error).message}`));
  });
  await gateway.listen();
  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`strata-gateway: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
