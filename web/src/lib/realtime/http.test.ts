import { describe, expect, it } from 'vitest';
import { BridgeApi } from './http';

const pair = { access_token: 'a', refresh_token: 'r', token_type: 'bearer', expires_in: 900 };

/** A BridgeApi whose fetch records each body it is given and answers with a token pair. */
function recording(): { api: BridgeApi; bodies: unknown[] } {
	const bodies: unknown[] = [];
	const fetchImpl = (async (_url: URL, init: RequestInit) => {
		bodies.push(JSON.parse(String(init.body)));
		return new Response(JSON.stringify(pair), { status: 200, headers: { 'Content-Type': 'application/json' } });
	}) as typeof fetch;
	return { api: new BridgeApi({ baseUrl: 'http://bridge.test', fetch: fetchImpl }), bodies };
}

describe('account bodies', () => {
	it('logs in with username, the documented field', async () => {
		const { api, bodies } = recording();
		await api.login('mira', 'correct horse battery staple');
		expect(bodies).toEqual([{ username: 'mira', password: 'correct horse battery staple' }]);
	});

	it('registers with username, given either username or the older name', async () => {
		const { api, bodies } = recording();
		await api.register({ username: 'mira', password: 'correct horse battery staple', display_name: 'Mira' });
		await api.register({ name: 'oskar', password: 'correct horse battery staple' });
		expect(bodies).toEqual([
			{ username: 'mira', password: 'correct horse battery staple', display_name: 'Mira' },
			{ username: 'oskar', password: 'correct horse battery staple' }
		]);
	});
});
