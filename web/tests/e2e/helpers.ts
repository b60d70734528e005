/**
 * Shared steps of the browser tests: fresh people, signing in through the page, a campaign with
 * a GM and a player seated, and a watch on the console so that any error fails the test.
 */
import { expect, type Browser, type BrowserContext, type ConsoleMessage, type Page, type WebSocketRoute } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

export const SCREENSHOTS = resolve(import.meta.dirname, '..', '..', 'test-results');
mkdirSync(SCREENSHOTS, { recursive: true });

let counter = 0;
/** A username no other test uses. */
export function uniqueName(prefix: string): string {
	counter += 1;
	return `${prefix}${Date.now().toString(36)}${String(counter).padStart(3, '0')}`;
}

export const PASSWORD = 'correct-horse-42';

/**
 * Console errors and page errors seen on a page; `expectNoConsoleErrors` fails the test on any.
 * Chromium logs every HTTP error answer as a console error; a test that provokes one on purpose
 * (a wrong password) names it in `seen.expected` as `STATUS METHOD-less URL pattern`.
 */
export function watchConsole(page: Page, label: string, allowed: RegExp[] = []): { errors: string[]; expected: RegExp[] } {
	const seen = { errors: [] as string[], expected: [...allowed] };
	page.on('console', (message: ConsoleMessage) => {
		if (message.type() !== 'error') return;
		const text = `${message.text()} @ ${message.location().url}`;
		if (seen.expected.some((pattern) => pattern.test(text))) return;
		seen.errors.push(`${label}: ${text}`);
	});
	page.on('pageerror', (error) => seen.errors.push(`${label}: ${error.message}`));
	return seen;
}

export interface Seat {
	context: BrowserContext;
	page: Page;
	name: string;
	console: { errors: string[]; expected: RegExp[] };
}

export async function newSeat(browser: Browser, prefix: string, allowed: RegExp[] = []): Promise<Seat> {
	const context = await browser.newContext();
	const page = await context.newPage();
	const name = uniqueName(prefix);
	return { context, page, name, console: watchConsole(page, name, allowed) };
}

/** Create an account through the sign-in form (the lobby shows afterwards). */
export async function createAccount(page: Page, name: string): Promise<void> {
	await page.getByLabel('Username').fill(name);
	await page.getByLabel('Password').fill(PASSWORD);
	await page.getByRole('button', { name: 'Create account' }).click();
}

export async function createCampaign(page: Page, campaign: string): Promise<void> {
	await page.getByLabel('Campaign name').fill(campaign);
	await page.getByRole('button', { name: 'Create campaign' }).click();
	await expect(page.getByRole('link', { name: campaign })).toBeVisible();
}

/** A new invite for the only campaign on the GM's lobby; returns the code and the link. */
export async function createInvite(page: Page): Promise<{ code: string; link: string }> {
	await page.getByRole('button', { name: 'Create invite' }).first().click();
	const code = (await page.getByTestId('invite-code').first().textContent())?.trim() ?? '';
	const link = (await page.getByTestId('invite-link').first().getAttribute('href')) ?? '';
	expect(code).not.toBe('');
	return { code, link };
}

/** The connection corner says we are at the table. */
export async function expectConnected(page: Page, words: RegExp = /Connected/): Promise<void> {
	await expect(page.getByTestId('connection-status')).toHaveText(words);
}

/** A GM and a player at one new campaign's table: the player joined through the invite link. */
export async function gmAndPlayer(
	browser: Browser,
	options: { preparePlayer?: (player: Seat) => Promise<void> } = {}
): Promise<{ gm: Seat; player: Seat; campaign: string; url: string }> {
	const gm = await newSeat(browser, 'gm');
	const player = await newSeat(browser, 'pl');
	await options.preparePlayer?.(player);
	const campaign = uniqueName('Campaign ');
	await gm.page.goto('/');
	await createAccount(gm.page, gm.name);
	await createCampaign(gm.page, campaign);
	const { link } = await createInvite(gm.page);
	await gm.page.getByRole('link', { name: campaign }).click();
	await expectConnected(gm.page);
	const url = gm.page.url();

	await player.page.goto(link);
	await createAccount(player.page, player.name);
	await expect(player.page).toHaveURL(url);
	await expectConnected(player.page);
	await expect(gm.page.getByRole('region', { name: 'Participants' }).getByText(player.name)).toBeVisible();
	return { gm, player, campaign, url };
}

export function expectNoConsoleErrors(...seats: Seat[]): void {
	expect(seats.flatMap((seat) => seat.console.errors)).toEqual([]);
}

/** Let one HTTP error through the console check: the test provokes it on purpose. */
export function expectHttpError(seat: Seat, status: number, path: string): void {
	seat.console.expected.push(new RegExp(`status of ${status} .*@ .*${path.replace(/[/]/g, '\\/')}$`));
}

/** Open a sidebar tab by its name (Rolls, Initiative, Notes, Characters, Tools, Activity). */
export async function openTab(page: Page, name: string | RegExp): Promise<void> {
	await page.getByRole('tab', { name }).click();
}

/** Roll through the roller; returns once the roll is numbered in this page's log. */
export async function roll(page: Page, expression: string, visibility?: 'Public' | 'GM only' | 'Blind (GM sees)' | 'Self only'): Promise<void> {
	if (visibility) await page.getByLabel('Visibility').selectOption({ label: visibility });
	await page.getByLabel('Dice expression').fill(expression);
	await page.getByRole('button', { name: 'Roll', exact: true }).click();
}

/**
 * A network cable for one browser context's WebSocket: every /ws connection goes through a
 * proxy that can be cut (both sides closed, new connections hang) and mended.
 * `context.setOffline` alone leaves an open socket untouched in Chromium, unlike a real outage.
 */
export async function cableFor(context: BrowserContext): Promise<{ cut: () => Promise<void>; mend: () => Promise<void> }> {
	let up = true;
	const live: { page: WebSocketRoute; server: WebSocketRoute }[] = [];
	// Attempts made while the cable is cut hang, as a real connect does, until it is mended.
	const hanging: WebSocketRoute[] = [];
	await context.routeWebSocket(/\/ws(\?|$)/, (ws) => {
		if (!up) {
			hanging.push(ws);
			return;
		}
		live.push({ page: ws, server: ws.connectToServer() });
	});
	return {
		async cut() {
			up = false;
			await context.setOffline(true);
			for (const { page, server } of live.splice(0)) {
				await page.close({ code: 4000, reason: 'network down' });
				await server.close({ code: 1001, reason: 'network down' });
			}
		},
		async mend() {
			up = true;
			await context.setOffline(false);
			for (const ws of hanging.splice(0)) await ws.close({ code: 4000, reason: 'network down' });
		}
	};
}
