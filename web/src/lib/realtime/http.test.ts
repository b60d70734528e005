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

describe('consent calls', () => {
	it('sends the request id in the query or the body, never in a path the request log keeps', async () => {
		const calls: { url: string; method: string; body: unknown }[] = [];
		const fetchImpl = (async (url: URL, init: RequestInit) => {
			calls.push({ url: url.toString(), method: String(init.method), body: init.body ? JSON.parse(String(init.body)) : null });
			return new Response(JSON.stringify({ redirect_to: 'http://127.0.0.1:1/cb?code=c' }), {
				status: 200,
				headers: { 'Content-Type': 'application/json' }
			});
		}) as typeof fetch;
		const api = new BridgeApi({ baseUrl: 'http://bridge.test', fetch: fetchImpl });
		await api.consentRequest('t', 'ttoq_a/b');
		await api.decideConsent('t', { request: 'ttoq_a/b', approve: true, campaign_id: 'camp_1', role: 'player' });
		expect(calls).toEqual([
			{ url: 'http://bridge.test/api/oauth/consent?request=ttoq_a%2Fb', method: 'GET', body: null },
			{
				url: 'http://bridge.test/api/oauth/consent',
				method: 'POST',
				body: { request: 'ttoq_a/b', approve: true, campaign_id: 'camp_1', role: 'player' }
			}
		]);
	});
});
