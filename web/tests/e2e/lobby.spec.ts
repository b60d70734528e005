import { expect, test } from '@playwright/test';
import { createAccount, createCampaign, createInvite, expectHttpError, expectNoConsoleErrors, newSeat, PASSWORD, SCREENSHOTS, uniqueName } from './helpers';

test('an account is created, signs out and back in, and makes a campaign with an invite', async ({ browser }) => {
	const gm = await newSeat(browser, 'lobby');
	const page = gm.page;
	const response = await page.goto('/');
	// The page allows its own bootstrap script by hash, and no other inline script.
	const policy = response?.headers()['content-security-policy'] ?? '';
	const scripts = policy.split('; ').find((directive) => directive.startsWith('script-src ')) ?? '';
	expect(scripts).toMatch(/^script-src 'self' 'sha256-[A-Za-z0-9+/=]+'$/);
	await expect(page.getByRole('heading', { name: 'ttrpg table' })).toBeVisible();
	await page.screenshot({ path: `${SCREENSHOTS}/sign-in-desktop.png` });

	await createAccount(page, gm.name);
	await expect(page.getByRole('heading', { name: 'Your campaigns' })).toBeVisible();
	await page.getByRole('button', { name: 'Sign out' }).click();

	await page.getByLabel('Username').fill(gm.name);
	expectHttpError(gm, 401, '/api/auth/login');
	await page.getByLabel('Password').fill('not-the-password');
	await page.getByRole('button', { name: 'Sign in' }).click();
	await expect(page.getByRole('alert')).toHaveText('Wrong username or password.');
	await page.getByLabel('Password').fill(PASSWORD);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await expect(page.getByRole('heading', { name: 'Your campaigns' })).toBeVisible();

	const campaign = uniqueName('Lobby campaign ');
	await page.getByLabel('System (optional)').fill('Blades in the Dark');
	await createCampaign(page, campaign);
	await expect(page.getByText('Game master', { exact: true })).toBeVisible();
	await expect(page.getByTestId('campaign-system')).toHaveText('Blades in the Dark');
	await expect(page.getByTestId('campaign-online')).toHaveText('0 online');
	const { code, link } = await createInvite(page);
	expect(link).toContain(`/join/${code}`);
	await page.screenshot({ path: `${SCREENSHOTS}/lobby-desktop.png`, fullPage: true });
	await page.setViewportSize({ width: 360, height: 740 });
	await page.screenshot({ path: `${SCREENSHOTS}/lobby-360.png`, fullPage: true });
	expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);

	// Someone else joins with the code typed into the lobby.
	const other = await newSeat(browser, 'coder');
	await other.page.goto('/');
	await createAccount(other.page, other.name);
	await other.page.getByLabel('Invite code').fill(code);
	await other.page.getByRole('button', { name: 'Join' }).click();
	await expect(other.page).toHaveURL(/\/c\//);
	await expect(other.page.getByTestId('connection-status')).toHaveText(/Connected/);
	await other.page.goto('/');
	await expect(other.page.getByRole('link', { name: campaign })).toBeVisible();
	await expect(other.page.getByText('Player', { exact: true })).toBeVisible();
	// The GM sits down at the table: the player's lobby counts one person online there.
	await page.setViewportSize({ width: 1280, height: 800 });
	await page.getByRole('link', { name: campaign }).click();
	await expect(page.getByTestId('connection-status')).toHaveText(/Connected/);
	await other.page.reload();
	await expect(other.page.getByTestId('campaign-online')).toHaveText('1 online');
	await expect(other.page.getByTestId('campaign-system')).toHaveText('Blades in the Dark');

	// A wrong code says why, next to the form.
	expectHttpError(other, 404, '/api/campaigns/join');
	await other.page.getByLabel('Invite code').fill('no-such-code');
	await other.page.getByRole('button', { name: 'Join' }).click();
	await expect(other.page.getByRole('alert')).toContainText('invite code');

	expectNoConsoleErrors(gm, other);
	await gm.context.close();
	await other.context.close();
});

test('the API docs load offline from the bridge', async ({ page }) => {
	const external: string[] = [];
	page.on('request', (request) => {
		if (!request.url().startsWith('http://127.0.0.1')) external.push(request.url());
	});
	await page.goto('/docs');
	await expect(page.getByText('/api/auth/login').first()).toBeVisible();
	expect(external).toEqual([]);
});

test('tabs of one browser share the sign-in: signing out in one signs out the other', async ({ browser }) => {
	const seat = await newSeat(browser, 'tabs');
	await seat.page.goto('/');
	await createAccount(seat.page, seat.name);
	await expect(seat.page.getByRole('heading', { name: 'Your campaigns' })).toBeVisible();
	const second = await seat.context.newPage();
	await second.goto('/');
	await expect(second.getByRole('heading', { name: 'Your campaigns' })).toBeVisible();
	await second.getByRole('button', { name: 'Sign out' }).click();
	await expect(seat.page.getByRole('button', { name: 'Sign in' })).toBeVisible();
	expectNoConsoleErrors(seat);
	await seat.context.close();
});
