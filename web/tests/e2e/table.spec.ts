import { expect, test } from '@playwright/test';
import { cableFor, expectConnected, expectNoConsoleErrors, gmAndPlayer, openTab, roll, SCREENSHOTS } from './helpers';

test('a roll by the player reaches the GM, a blind roll shows only for the GM', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	const gmLog = gm.page.getByRole('region', { name: 'Roll log' });
	const playerLog = player.page.getByRole('region', { name: 'Roll log' });

	await roll(player.page, '2d20kh1+5');
	await expect(playerLog.getByTestId('roll')).toHaveCount(1);
	await expect(gmLog.getByTestId('roll')).toHaveCount(1);
	const total = await playerLog.getByTestId('roll-total').textContent();
	await expect(gmLog.getByTestId('roll-total')).toHaveText(total ?? '');
	// The dropped d20 is struck through for both.
	await expect(gmLog.locator('s')).toHaveCount(1);

	await roll(player.page, '/r 1d20+3 sneak attack', 'Blind (GM sees)');
	await expect(gmLog.getByTestId('roll')).toHaveCount(2);
	await expect(gmLog.getByTestId('roll').nth(1).getByTestId('roll-total')).toBeVisible();
	await expect(gmLog.getByTestId('roll').nth(1)).toContainText('GM only');
	await expect(playerLog.getByTestId('roll')).toHaveCount(2);
	await expect(playerLog.getByTestId('roll').nth(1)).toContainText('Rolled in secret');
	await expect(playerLog.getByTestId('roll').nth(1).getByTestId('roll-total')).toHaveCount(0);

	await gm.page.screenshot({ path: `${SCREENSHOTS}/table-gm-desktop.png` });
	await gm.page.emulateMedia({ colorScheme: 'dark' });
	await gm.page.screenshot({ path: `${SCREENSHOTS}/table-gm-dark-desktop.png` });
	await player.page.setViewportSize({ width: 360, height: 740 });
	await player.page.screenshot({ path: `${SCREENSHOTS}/table-player-360.png` });
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('the GM runs initiative with a hidden combatant and the player sees the turn come', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	await openTab(gm.page, 'Initiative');
	await openTab(player.page, 'Initiative');
	const gmTracker = gm.page.getByRole('region', { name: 'Initiative' });
	const playerTracker = player.page.getByRole('region', { name: 'Initiative' });

	for (const [name, initiative, hidden] of [
		['Lurker', '20', true],
		[player.name, '15', false],
		['Goblin', '8', false]
	] as const) {
		await gmTracker.getByLabel('Combatant name').fill(name);
		await gmTracker.getByLabel('Initiative', { exact: true }).fill(initiative);
		await gmTracker.getByLabel('HP', { exact: true }).fill('12');
		if (hidden) await gmTracker.getByLabel('Hidden').check();
		await gmTracker.getByRole('button', { name: 'Add combatant' }).click();
		await expect(gmTracker.getByTestId('combatant').filter({ hasText: name })).toBeVisible();
	}
	await expect(gmTracker.getByText('Hidden from players')).toBeVisible();
	await expect(playerTracker.getByTestId('combatant')).toHaveCount(3);
	await expect(playerTracker.getByTestId('combatant').first()).toContainText('Hidden combatant');
	await expect(playerTracker.getByText('Lurker')).toHaveCount(0);
	await expect(playerTracker.getByRole('alert')).toHaveCount(0);

	await gmTracker.getByRole('button', { name: 'Next turn' }).click();
	await expect(playerTracker.getByRole('alert')).toHaveText(`It's your turn, ${player.name}!`);
	await expect(playerTracker.locator('[aria-current="true"]')).toContainText(player.name);

	// HP and conditions from the GM reach the player's tracker.
	await gmTracker.getByLabel('Conditions of Goblin').fill('prone, poisoned');
	await gmTracker.getByLabel('Conditions of Goblin').press('Enter');
	await gmTracker.getByLabel('Conditions of Goblin').blur();
	await expect(playerTracker.getByTestId('combatant').filter({ hasText: 'Goblin' })).toContainText('prone, poisoned');

	await gmTracker.getByRole('button', { name: 'Next turn' }).click();
	await expect(playerTracker.getByRole('alert')).toHaveCount(0);
	await expect(playerTracker.locator('[aria-current="true"]')).toContainText('Goblin');

	// A combatant added without an initiative gets one rolled (1d20 + modifier); a defeated one is struck.
	await gmTracker.getByLabel('Combatant name').fill('Rat');
	await gmTracker.getByLabel('Modifier').fill('2');
	await gmTracker.getByRole('button', { name: 'Add combatant' }).click();
	const rat = playerTracker.getByTestId('combatant').filter({ hasText: 'Rat' });
	await expect(rat).toBeVisible();
	const ratInitiative = Number(await gmTracker.getByTestId('combatant').filter({ hasText: 'Rat' }).getByTitle('Initiative').textContent());
	expect(ratInitiative).toBeGreaterThanOrEqual(3);
	expect(ratInitiative).toBeLessThanOrEqual(22);
	await gmTracker.getByRole('button', { name: 'Mark Rat defeated' }).click();
	await expect(gmTracker.getByRole('button', { name: 'Revive Rat' })).toBeVisible();
	await gm.page.screenshot({ path: `${SCREENSHOTS}/initiative-gm-desktop.png` });
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

async function drawStroke(page: import('@playwright/test').Page, from: [number, number], to: [number, number]): Promise<void> {
	const box = await page.getByTestId('canvas').boundingBox();
	if (!box) throw new Error('no canvas');
	const at = (p: [number, number]): [number, number] => [box.x + box.width * p[0], box.y + box.height * p[1]];
	await page.mouse.move(...at(from));
	await page.mouse.down();
	for (let step = 1; step <= 8; step += 1) {
		const t = step / 8;
		await page.mouse.move(...at([from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t]));
	}
	await page.mouse.up();
}

test('both draw on the canvas and see each other draw and point', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	await drawStroke(gm.page, [0.1, 0.1], [0.4, 0.3]);
	await drawStroke(player.page, [0.5, 0.6], [0.8, 0.9]);
	await expect(gm.page.getByTestId('canvas')).toHaveAttribute('data-strokes', '2');
	await expect(player.page.getByTestId('canvas')).toHaveAttribute('data-strokes', '2');

	// Each sees the other's cursor, and it follows the pointer.
	const gmSeesPlayer = gm.page.getByTestId('cursor').filter({ hasText: player.name });
	const playerSeesGm = player.page.getByTestId('cursor').filter({ hasText: gm.name });
	await expect(gmSeesPlayer).toBeVisible();
	await expect(playerSeesGm).toBeVisible();
	const box = await player.page.getByTestId('canvas').boundingBox();
	if (!box) throw new Error('no canvas');
	const before = await gmSeesPlayer.getAttribute('style');
	await player.page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.7);
	await expect(gmSeesPlayer).not.toHaveAttribute('style', before ?? '');
	await expect
		.poll(async () => {
			const style = (await gmSeesPlayer.getAttribute('style')) ?? '';
			return Number(/left:\s*([\d.]+)%/.exec(style)?.[1] ?? -1);
		})
		.toBeCloseTo(20, 0);

	await gm.page.screenshot({ path: `${SCREENSHOTS}/canvas-gm-desktop.png` });
	await player.page.getByRole('button', { name: 'Undo my stroke' }).click();
	await expect(gm.page.getByTestId('canvas')).toHaveAttribute('data-strokes', '1');
	await gm.page.getByRole('button', { name: 'Clear canvas' }).click();
	await expect(player.page.getByTestId('canvas')).toHaveAttribute('data-strokes', '0');
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('notes edited by both at once show a conflict to the later one, who resolves it', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	await openTab(gm.page, 'Notes');
	await openTab(player.page, 'Notes');
	const gmNotes = gm.page.getByRole('region', { name: 'Shared notes' });
	const playerNotes = player.page.getByRole('region', { name: 'Shared notes' });

	await gmNotes.getByRole('textbox').fill('The ferryman wants two silver.');
	await playerNotes.getByRole('textbox').fill('We owe the ferryman nothing.');
	await gmNotes.getByRole('button', { name: 'Save notes' }).click();
	await expect(gmNotes.getByText(/^Saved/)).toBeVisible();
	await playerNotes.getByRole('button', { name: 'Save notes' }).click();

	const conflict = playerNotes.getByRole('alert');
	await expect(conflict).toContainText('Conflict');
	await expect(playerNotes.getByTestId('notes-theirs')).toHaveText('The ferryman wants two silver.');
	await expect(playerNotes.getByTestId('notes-mine')).toHaveText('We owe the ferryman nothing.');
	await expect(gmNotes.getByRole('alert')).toHaveCount(0);
	await player.page.screenshot({ path: `${SCREENSHOTS}/notes-conflict-desktop.png` });

	await playerNotes.getByRole('button', { name: 'Keep mine' }).click();
	await expect(playerNotes.getByRole('alert')).toHaveCount(0);
	await expect(gmNotes.getByRole('textbox')).toHaveValue('We owe the ferryman nothing.');
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('a player offline for 5 seconds gets every roll made meanwhile, once each', async ({ browser }) => {
	let cable: Awaited<ReturnType<typeof cableFor>> | undefined;
	const { gm, player } = await gmAndPlayer(browser, {
		preparePlayer: async (seat) => {
			cable = await cableFor(seat.context);
		}
	});
	const playerLog = player.page.getByRole('region', { name: 'Roll log' });
	await roll(gm.page, '/r 1d6 warm-up');
	await expect(playerLog.getByTestId('roll')).toHaveCount(1);

	await cable!.cut();
	const offlineSince = Date.now();
	await expect(player.page.getByTestId('connection-status')).toHaveText(/^Offline/);
	for (const purpose of ['first', 'second', 'third']) {
		await roll(gm.page, `/r 1d20 ${purpose}`);
		await expect(gm.page.getByRole('region', { name: 'Roll log' }).getByText(purpose, { exact: true })).toBeVisible();
	}
	// The scenario is five seconds without a network, not a wait for a condition.
	await player.page.waitForTimeout(Math.max(0, 5_000 - (Date.now() - offlineSince)));
	// A change made while offline waits, and says so.
	await expect(player.page.getByTestId('connection-status')).toHaveText(/^Offline/);
	await roll(player.page, '/r 1d12 made offline');
	await expect(player.page.getByTestId('connection-status')).toHaveText('Offline, 1 change waiting');
	await cable!.mend();

	// The client backs off while the network is down (at most 15 s between attempts).
	await expect(player.page.getByTestId('connection-status')).toHaveText(/Connected/, { timeout: 45_000 });
	await expect(playerLog.getByTestId('roll')).toHaveCount(5);
	await expect(gm.page.getByRole('region', { name: 'Roll log' }).getByText('made offline', { exact: true })).toHaveCount(1);
	for (const purpose of ['first', 'second', 'third', 'made offline']) {
		await expect(playerLog.getByText(purpose, { exact: true })).toHaveCount(1);
	}
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('with the WebSocket blocked the table works on SSE and says so', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser, {
		preparePlayer: async (seat) => {
			// A proxy that refuses the WebSocket upgrade: every handshake ends before it opens.
			await seat.context.routeWebSocket(/\/ws(\?|$)/, (ws) => {
				void ws.close({ code: 4000, reason: 'upgrade refused' });
			});
		}
	});
	await expect(player.page.getByTestId('connection-status')).toHaveText(/on SSE/);
	await roll(player.page, '/r 1d20+2 over SSE');
	await expect(gm.page.getByRole('region', { name: 'Roll log' }).getByText('over SSE')).toBeVisible();
	await roll(gm.page, '/r 1d8 back to the player');
	await expect(player.page.getByRole('region', { name: 'Roll log' }).getByText('back to the player')).toBeVisible();
	await player.page.screenshot({ path: `${SCREENSHOTS}/table-player-sse-desktop.png` });
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('what people type is shown as text, never run as markup; presence follows the window', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	const markup = '<img src=x onerror="document.title=`pwned`"><b>bold</b>';
	await player.page.getByLabel('Purpose').fill(markup);
	await roll(player.page, '1d4');
	const gmLog = gm.page.getByRole('region', { name: 'Roll log' });
	await expect(gmLog.getByText(markup)).toBeVisible();
	await expect(gmLog.locator('img')).toHaveCount(0);
	await expect(gmLog.locator('b')).toHaveCount(0);

	await openTab(player.page, 'Notes');
	await player.page.getByRole('region', { name: 'Shared notes' }).getByRole('textbox').fill(markup);
	await player.page.getByRole('button', { name: 'Save notes' }).click();
	await openTab(gm.page, 'Notes');
	await expect(gm.page.getByRole('region', { name: 'Shared notes' }).getByRole('textbox')).toHaveValue(markup);
	expect(await gm.page.title()).not.toBe('pwned');
	expect(await player.page.title()).not.toBe('pwned');

	// Away when the window loses focus, online when it comes back.
	await player.page.evaluate(() => window.dispatchEvent(new Event('blur')));
	const seen = gm.page.getByRole('region', { name: 'Participants' }).getByTestId('participant').filter({ hasText: player.name });
	await expect(seen).toHaveAttribute('data-status', 'away');
	await player.page.evaluate(() => window.dispatchEvent(new Event('focus')));
	await expect(seen).toHaveAttribute('data-status', 'online');
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('a table session outlives its 30-second access tokens', async ({ browser }) => {
	const { gm, player, campaign } = await gmAndPlayer(browser);
	// The scenario is time passing beyond the token's life (30 s in these tests), not a condition.
	await player.page.waitForTimeout(40_000);
	await expectConnected(player.page);
	await roll(player.page, '/r 1d20 after renewal');
	await expect(gm.page.getByRole('region', { name: 'Roll log' }).getByText('after renewal')).toBeVisible();
	await player.page.getByRole('link', { name: '← Campaigns' }).click();
	await expect(player.page.getByRole('link', { name: campaign })).toBeVisible();
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('GM-only campaign notes are marked for the GM and never reach the player', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	await openTab(gm.page, 'Notes');
	const gmNotes = gm.page.getByRole('region', { name: 'Campaign notes' });
	for (const [title, body, who] of [
		['Secret', 'The duke is the cultist.', 'Only me (GM)'],
		['Plan', 'Meet at the docks at dawn.', 'Everyone at the table']
	] as const) {
		await gmNotes.getByLabel('Title').fill(title);
		await gmNotes.getByLabel('Note', { exact: true }).fill(body);
		await gmNotes.getByLabel('Who may read it').selectOption({ label: who });
		await gmNotes.getByRole('button', { name: 'Add note' }).click();
		await expect(gmNotes.getByTestId('campaign-note').filter({ hasText: body })).toBeVisible();
	}
	await expect(gmNotes.getByTestId('campaign-note').filter({ hasText: 'duke' })).toContainText('GM only');

	await openTab(player.page, 'Notes');
	const playerNotes = player.page.getByRole('region', { name: 'Campaign notes' });
	await expect(playerNotes.getByText('Meet at the docks at dawn.')).toBeVisible();
	await expect(playerNotes.getByText(/duke/)).toHaveCount(0);
	await expect(playerNotes.getByRole('button', { name: 'Add note' })).toHaveCount(0);
	await gm.page.screenshot({ path: `${SCREENSHOTS}/notes-gm-desktop.png` });
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});
