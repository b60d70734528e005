import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

/**
 * The dev server proxies the bridge (HTTP, WebSocket and SSE) so the app talks to one origin,
 * as it does when the bridge serves the built files. TTRPG_BRIDGE_URL overrides the target.
 */
const bridge = process.env.TTRPG_BRIDGE_URL ?? 'http://127.0.0.1:8765';

export default defineConfig({
	plugins: [sveltekit()],
	server: {
		proxy: {
			'/api': { target: bridge, changeOrigin: true },
			'/ws': { target: bridge, ws: true, changeOrigin: true },
			'/readyz': { target: bridge },
			'/healthz': { target: bridge }
		}
	},
	test: {
		environment: 'node',
		testTimeout: 60_000,
		hookTimeout: 60_000,
		projects: [
			{
				// Pure parts: no network, no bridge.
				extends: true,
				test: { name: 'unit', include: ['src/**/*.test.ts'], exclude: ['src/**/*.bridge.test.ts'] }
			},
			{
				// Against a real ttrpg-bridge started once for the run (scripts/bridge-global-setup.ts).
				extends: true,
				test: {
					name: 'bridge',
					include: ['src/**/*.bridge.test.ts'],
					globalSetup: ['scripts/bridge-global-setup.ts'],
					// One bridge on a shared machine: files run one after another.
					fileParallelism: false
				}
			}
		]
	}
});
