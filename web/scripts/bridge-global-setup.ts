/**
 * vitest globalSetup for the tests that need a real bridge: starts `ttrpg-bridge serve` on a free
 * port with a fresh data directory and test settings, waits for `/readyz`, and hands the URL to
 * the tests (`inject('bridgeUrl')`). The bridge command is TTRPG_BRIDGE_BIN, else the repo's
 * `.venv/bin/ttrpg-bridge` (`make install` creates it).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

// The values provided to the tests are declared in src/lib/realtime/testing/provided.d.ts.
/** A fresh data directory migrates its stores and indexes the compendium before it is ready. */
const READY_POLLS = 600;
const POLL_MS = 150;
const STOP_POLLS = 200;
export const ACCESS_TOKEN_TTL = 30;

// Short token lives (renewal is exercised), and rate limits out of the way of tests that
// send many changes in a burst or create many accounts from 127.0.0.1 (the per-address sign-in
// and registration throttles are for attackers); everything else is the bridge's defaults.
const SETTINGS = `
access_token_ttl = ${ACCESS_TOKEN_TTL}
rate_messages_per_second = 1000
rate_messages_burst = 1000
register_per_minute_ip = 10000
login_per_minute_ip = 10000
login_per_minute_account = 1000

[mcp]
min_children = 1
max_children = 2
`;

function freePort(): Promise<number> {
	return new Promise((resolvePort, reject) => {
		const server = createServer();
		server.unref();
		server.on('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			server.close(() => {
				if (address !== null && typeof address === 'object') resolvePort(address.port);
				else reject(new Error('no port'));
			});
		});
	});
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const bin = process.env.TTRPG_BRIDGE_BIN ?? resolve(process.cwd(), '..', '.venv', 'bin', 'ttrpg-bridge');
	const dir = await mkdtemp(join(tmpdir(), 'ttrpg-web-bridge-'));
	const dataDir = join(dir, 'data');
	const config = join(dir, 'bridge.toml');
	const logPath = join(dir, 'bridge.log');
	await writeFile(config, SETTINGS);
	const port = await freePort();
	const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TTRPG_')));
	const log = createWriteStream(logPath);
	const child: ChildProcess = spawn(
		bin,
		['--data-dir', dataDir, '--config', config, 'serve', '--host', '127.0.0.1', '--port', String(port)],
		{ env: { ...env, TTRPG_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'pipe'] }
	);
	child.stdout?.pipe(log);
	child.stderr?.pipe(log);
	const url = `http://127.0.0.1:${port}`;
	let ready = false;
	for (let poll = 0; poll < READY_POLLS && !ready; poll += 1) {
		if (child.exitCode !== null) break;
		try {
			ready = (await fetch(`${url}/readyz`)).status === 200;
		} catch {
			// Not listening yet.
		}
		if (!ready) await sleep(POLL_MS);
	}
	if (!ready) {
		child.kill('SIGKILL');
		const text = await readFile(logPath, 'utf8').catch(() => '');
		throw new Error(`the bridge (${bin}) did not become ready; log:\n${text.slice(-4000)}`);
	}
	project.provide('bridgeUrl', url);
	// What the bridge says it sends: the tests check every message they saw against it.
	project.provide('serverSchema', JSON.parse(execFileSync(bin, ['schema', '--messages', 'server'], { encoding: 'utf8' })));
	project.provide('accessTokenTtl', ACCESS_TOKEN_TTL);
	return async () => {
		if (child.exitCode === null) {
			child.kill('SIGTERM');
			for (let poll = 0; poll < STOP_POLLS && child.exitCode === null; poll += 1) await sleep(POLL_MS);
			if (child.exitCode === null) child.kill('SIGKILL');
		}
		log.end();
		await rm(dir, { recursive: true, force: true });
	};
}
