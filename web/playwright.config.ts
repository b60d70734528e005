import { createServer } from 'node:net';
import { cpSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defineConfig } from '@playwright/test';

/**
 * Browser tests: Debian's Chromium against a real bridge (real MCP children, a fresh SQLite data
 * directory) serving the built app from web/build. The config is evaluated again in each worker,
 * so the port and data directory are chosen once and handed down through the environment.
 */

async function freePort(): Promise<number> {
	return new Promise((ok, fail) => {
		const server = createServer();
		server.once('error', fail);
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			server.close(() => (typeof address === 'object' && address ? ok(address.port) : fail()));
		});
	});
}

process.env.TTRPG_E2E_PORT ??= String(await freePort());
process.env.TTRPG_E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), 'ttrpg-e2e-'));
// The bridge serves a copy of the build taken now, so a rebuild while the tests run (npm run
// build in another terminal) cannot swap the files under a page that is loading.
if (!process.env.TTRPG_E2E_WEB_DIR) {
	const build = resolve(import.meta.dirname, 'build');
	if (!existsSync(resolve(build, 'index.html'))) throw new Error('web/build is missing: run `npm run build` first');
	process.env.TTRPG_E2E_WEB_DIR = join(process.env.TTRPG_E2E_DATA_DIR, 'web');
	cpSync(build, process.env.TTRPG_E2E_WEB_DIR, { recursive: true });
}
const port = Number(process.env.TTRPG_E2E_PORT);
const dataDir = process.env.TTRPG_E2E_DATA_DIR;
const root = resolve(import.meta.dirname, '..');
const baseURL = `http://127.0.0.1:${port}`;

export default defineConfig({
	testDir: 'tests/e2e',
	outputDir: 'test-results/artifacts',
	// Two cores shared with other work: one browser test at a time, each with generous waits.
	workers: 1,
	fullyParallel: false,
	retries: 0,
	timeout: 180_000,
	expect: { timeout: 20_000 },
	reporter: [['list']],
	use: {
		baseURL,
		browserName: 'chromium',
		launchOptions: {
			executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
			args: ['--no-sandbox']
		},
		trace: 'retain-on-failure',
		screenshot: 'only-on-failure'
	},
	webServer: {
		command: `${root}/.venv/bin/ttrpg-bridge --data-dir ${dataDir} serve --host 127.0.0.1 --port ${port}`,
		url: `${baseURL}/readyz`,
		reuseExistingServer: false,
		timeout: 120_000,
		stdout: 'ignore',
		stderr: 'pipe',
		env: {
			TTRPG_WEB_DIR: process.env.TTRPG_E2E_WEB_DIR,
			TTRPG_LOG_FORMAT: 'json',
			TTRPG_LOG_LEVEL: 'warning',
			// Every test signs people in and registers from 127.0.0.1; the per-address throttles are for attackers.
			TTRPG_LOGIN_PER_MINUTE_IP: '10000',
			TTRPG_LOGIN_PER_MINUTE_ACCOUNT: '1000',
			TTRPG_REGISTER_PER_MINUTE_IP: '10000',
			// Access tokens live 30 s (the shortest allowed), so every longer test also runs
			// through token renewals: the page's own and the realtime client's reauthenticate.
			TTRPG_ACCESS_TOKEN_TTL: '30'
		}
	}
});
