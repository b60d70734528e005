/**
 * An MCP client's OAuth authorization through the consent page, in a real browser: the person
 * is sent to sign in first and comes back to the request, picks the campaign and the agent's
 * role, approves; the client trades the code for tokens; the account page revokes the agent.
 */
import { expect, test } from '@playwright/test';
import { createHash, randomBytes } from 'node:crypto';
import { PASSWORD, SCREENSHOTS, createAccount, createCampaign, expectNoConsoleErrors, newSeat, uniqueName } from './helpers';

const CALLBACK = 'http://127.0.0.1:33418/callback';

function pkce(): { verifier: string; challenge: string } {
	const verifier = randomBytes(48).toString('base64url');
	return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

test('a signed-out person signs in, approves an agent for one campaign, and revokes it', async ({ browser, baseURL }) => {
	const seat = await newSeat(browser, 'oa');
	const { page } = seat;
	const campaign = uniqueName('Campaign ');
	await page.goto('/');
	await createAccount(page, seat.name);
	await createCampaign(page, campaign);
	await page.getByRole('button', { name: 'Sign out' }).click();

	// The client registers itself and sends the browser to /authorize.
	const registered = await page.request.post('/register', {
		data: {
			client_name: 'Claude',
			redirect_uris: [CALLBACK],
			token_endpoint_auth_method: 'none',
			grant_types: ['authorization_code', 'refresh_token'],
			response_types: ['code']
		}
	});
	expect(registered.status()).toBe(201);
	const clientId = ((await registered.json()) as { client_id: string }).client_id;
	const { verifier, challenge } = pkce();
	const authorize = new URL('/authorize', baseURL);
	for (const [key, value] of Object.entries({
		response_type: 'code',
		client_id: clientId,
		redirect_uri: CALLBACK,
		code_challenge: challenge,
		code_challenge_method: 'S256',
		state: 'st4te'
	})) {
		authorize.searchParams.set(key, value);
	}
	// The client's local callback: answered here, its address kept for the test.
	let callback: URL | null = null;
	await page.context().route(`${CALLBACK}**`, async (route) => {
		callback = new URL(route.request().url());
		await route.fulfill({ contentType: 'text/html', body: '<p>You can close this window.</p>' });
	});

	await page.goto(authorize.toString());
	await expect(page).toHaveURL(/\/oauth\/consent\?request=/);
	await expect(page.getByText('An AI agent asks to join your table')).toBeVisible();
	await page.getByLabel('Username').fill(seat.name);
	await page.getByLabel('Password').fill(PASSWORD);
	await page.getByRole('button', { name: 'Sign in' }).click();

	await expect(page.getByTestId('client-name')).toHaveText('Claude');
	await expect(page.getByLabel('Campaign')).toHaveValue(/.+/);
	await page.getByLabel("The agent's role").selectOption({ label: 'Spectator' });
	await page.screenshot({ path: `${SCREENSHOTS}/oauth-consent-desktop.png` });
	await page.getByRole('button', { name: 'Approve' }).click();
	await expect.poll(() => callback?.searchParams.get('state') ?? null).toBe('st4te');
	const code = (callback as URL | null)?.searchParams.get('code') ?? '';
	expect(code).toMatch(/^ttoc_/);

	const token = await page.request.post('/token', {
		form: { grant_type: 'authorization_code', code, redirect_uri: CALLBACK, client_id: clientId, code_verifier: verifier }
	});
	expect(token.status()).toBe(200);
	const access = ((await token.json()) as { access_token: string }).access_token;
	const asAgent = { headers: { Authorization: `Bearer ${access}` } };
	const listed = await page.request.get('/api/campaigns', asAgent);
	expect(((await listed.json()) as { campaigns: { name: string }[] }).campaigns.map((c) => c.name)).toEqual([campaign]);

	await page.goto('/account');
	const agent = page.getByTestId('agent');
	await expect(agent).toContainText('Claude');
	await expect(agent).toContainText(`in ${campaign} as spectator`);
	await page.screenshot({ path: `${SCREENSHOTS}/account-agents-desktop.png` });
	await agent.getByRole('button', { name: 'Revoke' }).click();
	await expect(page.getByText('No agent acts for you.')).toBeVisible();
	expect((await page.request.get('/api/campaigns', asAgent)).status()).toBe(401);
	expectNoConsoleErrors(seat);
	await seat.context.close();
});
