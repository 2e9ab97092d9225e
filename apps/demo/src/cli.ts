#!/usr/bin/env node
// Strata demo: the whole cache stack on a support bot's day, with a savings report.
import { parseDemoArgs } from './args.js';
import { runDemo } from './demo.js';

async function main(): Promise<number> {
  const parsed = parseDemoArgs(process.argv.slice(2));
  if ('help' in parsed) {
    process.stdout.write(parsed.help);
    return 0;
  }
  if ('error' in parsed) {
    process.stderr.write(`strata demo: ${parsed.error}\n`);
    return 2;
  }
  const { summary, metrics } = await runDemo(parsed.options);
  if (metrics) {
    // The run is over; the final figures stay up for scraping until the user stops the demo.
    process.stderr.write(`Metrics still served at ${metrics.url} — Ctrl+C to stop.\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await metrics.close();
  }
  return summary.exitCode;
}
main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`strata demo failed: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 2;
  },
);
