#!/usr/bin/env node
// strata — the gateway's admin CLI: a client of the admin API that prints tables.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { generateKey, hashKey } from '../keys.js';
import { table } from './table.js';

const HELP = `Usage: strata <command> [options]

Commands:
  hash-key [<key>]                 print the config hash of a key (read from stdin when not given)
  hash-key --new                   make a new random key and print it with its hash
  stats                            hits, misses and layers of the gateway's cache
  keys                             the key table (ids, tenants, revoked)
  explain <a.json> <b.json>        why two requests do (not) share a cache entry
  inspect <request.json>           what each layer holds for a request (--value prints the answer)
  purge --tag <tag> [--tenant <t>] entries carrying a tag (in one tenant)
  purge --prompt </re/flags>       entries whose prompt matches (bounded by --max)
  purge --request <request.json>   the entry of one request
  purge --tenant <t> [--namespace <n>]   everything of a tenant
  bump --tenant <t> [--namespace <n>]    new scope version: every older entry unreachable at once
  event <name> [field=value ...]   apply an invalidation event from the config's rules
  reload                           re-read the config file's keys (revocations take effect)

A request file holds a request body, or { "path": "/v1/messages", "body": {...}, "headers": {...} }.
Whose request it is: --key <key id> or --tenant <tenant> [--namespace <ns>].

Options:
  --admin <url>       the admin API (or STRATA_ADMIN_URL) [http://127.0.0.1:8081]
  --token-file <f>    file holding the admin token (or STRATA_ADMIN_TOKEN)
  --json              print the raw JSON answer`;

interface Options {
  admin: string;
  token: string | undefined;
  json: boolean;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        admin: { type: 'string' },
        'token-file': { type: 'string' },
        json: { type: 'boolean' },
        new: { type: 'boolean' },
        tag: { type: 'string' },
        prompt: { type: 'string' },
        request: { type: 'string' },
        tenant: { type: 'string' },
        namespace: { type: 'string' },
        key: { type: 'string' },
        max: { type: 'string' },
        value: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return fail(`${(error as Error).message}\n\n${HELP}`, 2);
  }
  const { values: v, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (v.help || !command) {
    process.stdout.write(HELP + '\n');
    return command || v.help ? 0 : 2;
  }
  if (command === 'hash-key') return hashKeyCommand(rest[0], v.new === true);

  const o: Options = {
    admin: (v.admin ?? process.env['STRATA_ADMIN_URL'] ?? 'http://127.0.0.1:8081').replace(/\/+$/, ''),
    token: v['token-file'] ? readFileSync(v['token-file'], 'utf8').trim() : process.env['STRATA_ADMIN_TOKEN'],
    json: v.json === true,
  };
  const who = { ...(v.key ? { key: v.key } : {}), ...(v.tenant ? { tenant: v.tenant } : {}), ...(v.namespace ? { namespace: v.namespace } : {}) };
  switch (command) {
    case 'stats':
      return show(o, await call(o, 'GET', '/admin/stats'), printStats);
    case 'keys':
      return show(o, await call(o, 'GET', '/admin/keys'), (r) =>
        table(
          ['id', 'tenant', 'namespace', 'revoked'],
          (r.keys as Row[]).map((k) => [k.id, k.tenant, k.namespace, k.revoked ? 'yes' : '']),
        ),
      );
    case 'explain': {
      if (rest.length !== 2) return fail('explain needs two request files: strata explain a.json b.json', 2);
      const body = { a: { ...readRequest(rest[0]!), ...who }, b: { ...readRequest(rest[1]!), ...who } };
      return show(o, await call(o, 'POST', '/admin/explain', body), printExplain);
    }
    case 'inspect': {
      if (rest.length !== 1) return fail('inspect needs one request file: strata inspect request.json --tenant acme', 2);
      return show(o, await call(o, 'POST', `/admin/inspect${v.value ? '?value=1' : ''}`, { ...readRequest(rest[0]!), ...who }), printInspect);
    }
    case 'purge': {
      const body: Record<string, unknown> = { ...who };
      if (v.tag) body['tag'] = v.tag;
      if (v.prompt) body['prompt'] = v.prompt;
      if (v.request) body['request'] = readRequest(v.request);
      if (v.max) body['maxPurged'] = Number(v.max);
      if (Object.keys(body).length === 0) return fail('purge needs --tag, --prompt, --request or --tenant (see strata --help)', 2);
      return show(o, await call(o, 'POST', '/admin/purge', body), printPurge);
    }
    case 'bump':
      return show(o, await call(o, 'POST', '/admin/bump', who), (r) =>
        table(
          ['tenant', 'namespace', 'new version', 'kept in L2'],
          (r.bumped as Row[]).map((b) => [b.tenant, b.namespace, b.version, b.persisted ? 'yes' : 'no']),
        ),
      );
    case 'event': {
      const [name, ...fields] = rest;
      if (!name) return fail('event needs a name: strata event product_updated id=42', 2);
      const data: Record<string, unknown> = {};
      for (const f of fields) {
        const i = f.indexOf('=');
        if (i < 1) return fail(`event data must be field=value, not "${f}"`, 2);
        const raw = f.slice(i + 1);
        data[f.slice(0, i)] = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
      }
      return show(
        o,
        await call(o, 'POST', `/admin/events/${encodeURIComponent(name)}`, data),
        (r) => `event ${r.event}: ${r.total} entries removed\n` + layersTable(r.removed as Record<string, number>),
      );
    }
    case 'reload':
      return show(
        o,
        await call(o, 'POST', '/admin/reload', {}),
        (r) => `keys reloaded: ${r.keys}\n` + (r.notes as string[]).map((n) => `note: ${n}\n`).join(''),
      );
    default:
      return fail(`unknown command "${command}"\n\n${HELP}`, 2);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: rows of the admin API's JSON, printed field by field
type Row = Record<string, any>;

async function call(o: Options, method: string, path: string, body?: unknown): Promise<{ status: number; json: Row }> {
  if (!o.token) throw new CliError('no admin token: set STRATA_ADMIN_TOKEN or pass --token-file <file>');
  let res: Response;
  try {
    res = await fetch(o.admin + path, {
      method,
      headers: { authorization: `Bearer ${o.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    throw new CliError(
      `cannot reach the admin API at ${o.admin} (${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}); is the gateway running with "admin" on, and is --admin right?`,
    );
  }
  const text = await res.text();
  let json: Row;
  try {
    json = JSON.parse(text) as Row;
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}

function show(o: Options, r: { status: number; json: Row }, print: (json: Row) => string): number {
  if (r.status >= 400) {
    const message = (r.json['error'] as { message?: string } | undefined)?.message ?? r.json['text'] ?? JSON.stringify(r.json);
    return fail(`${r.status}: ${message}`, 1);
  }
  process.stdout.write(o.json ? JSON.stringify(r.json, null, 2) + '\n' : print(r.json));
  return 0;
}

function readRequest(file: string): Row {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CliError(`cannot read ${file} as JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new CliError(`${file} must hold a JSON object (a request body, or { path, body, headers })`);
  const o = json as Row;
  return 'body' in o && typeof o['body'] === 'object' ? o : { body: o };
}

function hashKeyCommand(given: string | undefined, makeNew: boolean): number {
  if (makeNew) {
    const key = generateKey();
    process.stdout.write(
      `key:  ${key}\nhash: ${hashKey(key)}\n\nGive the key to the caller; put only the hash in the config:\n  { "id": "<name>", "tenant": "<tenant>", "hash": "${hashKey(key)}" }\n`,
    );
    return 0;
  }
  const key = given ?? readFileSync(0, 'utf8').trim();
  if (!key) return fail('hash-key needs a key (as an argument or on stdin), or --new', 2);
  process.stdout.write(hashKey(key) + '\n');
  return 0;
}

function printStats(r: Row): string {
  const c = r.cache as Row;
  const g = r.gateway as Row;
  // Semantic misses that waited for a similar question's load in flight, and how many it served.
  const joined = c.joinedSimilar as { waited: number; served: number } | undefined;
  let out = table(
    ['requests', 'hits', 'misses', 'hit rate', 'bypassed', 'coalesced', 'waited for similar (served)', 'upstream calls', 'USD saved'],
    [
      [
        c.requests,
        c.hits,
        c.misses,
        pct(c.hitRate),
        c.bypassed,
        c.coalesced,
        joined ? `${joined.waited} (${joined.served})` : '–',
        c.loaderCalls,
        (c.usdSaved as number).toFixed(4),
      ],
    ],
  );
  const layers = Object.entries(c.layers as Record<string, Row>);
  if (layers.length) {
    const extra = r.layers as Record<string, Row>;
    out +=
      '\n' +
      table(
        ['layer', 'hits', 'misses', 'errors', 'timeouts', 'writes', 'p50 ms', 'p95 ms', 'state'],
        layers.map(([name, l]) => [name, l.hits, l.misses, l.errors, l.timeouts, l.writes, ms(l.p50Ms), ms(l.p95Ms), extra[name]?.state ?? '']),
      );
  }
  const byCache = Object.entries((g.byCache ?? {}) as Record<string, number>);
  out +=
    '\n' +
    table(
      ['gateway requests', ...byCache.map(([k]) => k), 'auth failures', '5xx', 'open streams'],
      [[g.requests, ...byCache.map(([, n]) => n), g.authFailures, g.errors, g.activeStreams]],
    );
  const skips = Object.entries((c.policySkips ?? {}) as Record<string, number>);
  if (skips.length) out += '\n' + table(['not cached by policy', 'requests'], skips);
  const uncached = Object.entries(r.uncached as Record<string, Record<string, number>>).flatMap(([u, reasons]) =>
    Object.entries(reasons).map(([reason, n]) => [u, reason, n]),
  );
  if (uncached.length) out += '\n' + table(['upstream', 'passed through uncached', 'requests'], uncached);
  return out;
}

function printExplain(r: Row): string {
  const a = r.a as Row;
  const b = r.b as Row;
  let out = table(
    ['', 'route', 'cached', 'key'],
    [
      ['a', a.route, a.cached ? 'yes' : `no (${a.reason ?? 'not cacheable'})`, a.key ?? ''],
      ['b', b.route, b.cached ? 'yes' : `no (${b.reason ?? 'not cacheable'})`, b.key ?? ''],
    ],
  );
  out += `\n${r.sameKey ? "SAME KEY: b is served a's entry." : "DIFFERENT KEYS: b misses a's entry."}\n`;
  if (r.note) out += `${r.note}\n`;
  if (r.scope) out += `scopes differ: a ${(r.scope as Row).a}, b ${(r.scope as Row).b}\n`;
  if (r.profiles) out += `endpoints differ: a ${(r.profiles as Row).a}, b ${(r.profiles as Row).b}\n`;
  const diffs = (r.differences ?? []) as Row[];
  if (diffs.length)
    out +=
      '\nfields that change the key:\n' +
      table(
        ['field', 'change', 'a', 'b'],
        diffs.map((d) => [d.path, d.kind, short(d.a), short(d.b)]),
      );
  const ignored = (r.ignoredDifferences ?? []) as Row[];
  if (ignored.length)
    out +=
      '\nfields that differ but do not change the key:\n' +
      table(
        ['field', 'change', 'a', 'b'],
        ignored.map((d) => [d.path, d.kind, short(d.a), short(d.b)]),
      );
  return out;
}

function printInspect(r: Row): string {
  if (!r.cached) return `not cached by the gateway${r.reason ? ` (${r.reason})` : ''}\n`;
  let out = `key ${r.key}${r.stream ? ' (stream)' : ''}\n`;
  const rows = Object.entries(r.layers as Record<string, Row>).map(([name, e]) =>
    e.error
      ? [name, `error: ${e.error}`, '', '', '', '', '']
      : e.present
        ? [
            name,
            e.expired ? 'expired' : 'yes',
            e.createdAt,
            seconds(e.ageMs),
            e.ttlMs === null ? 'none' : seconds(e.ttlMs),
            (e.tags as string[]).join(',') || '-',
            e.bytes,
          ]
        : [name, 'no', '', '', '', '', ''],
  );
  out += table(['layer', 'present', 'created', 'age', 'ttl', 'tags', 'bytes'], rows);
  for (const [name, e] of Object.entries(r.layers as Record<string, Row>))
    if (e.value !== undefined) out += `\n${name} value:\n${JSON.stringify(e.value, null, 2)}\n`;
  return out;
}

function printPurge(r: Row): string {
  if (r.kind === 'prompt') {
    const reports = r.reports as Row[];
    return table(
      ['pattern', 'scanned', 'purged', 'complete'],
      reports.map((p) => [r.pattern, p.scanned ?? '', p.purged ?? p.total ?? '', p.complete === false ? 'no (run again to resume)' : 'yes']),
    );
  }
  return `purged by ${r.kind}: ${r.total} entries\n` + layersTable(r.removed as Record<string, number>);
}

function layersTable(layers: Record<string, number>): string {
  const rows = Object.entries(layers ?? {});
  return rows.length ? table(['layer', 'removed'], rows) : '';
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number | undefined) => (x === undefined || x === null ? '-' : x.toFixed(2));
const seconds = (x: number) => `${(x / 1000).toFixed(1)} s`;
const short = (x: unknown) => {
  const s = x === undefined ? '—' : JSON.stringify(x);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
};

class CliError extends Error {}

function fail(message: string, code: number): number {
  process.stderr.write(`strata: ${message}\n`);
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`strata: ${error instanceof CliError ? error.message : ((error as Error)?.stack ?? String(error))}\n`);
    process.exit(1);
  },
);
