import { expect, test } from '@playwright/test';
import { expectNoConsoleErrors, gmAndPlayer, openTab, SCREENSHOTS } from './helpers';

test('the GM makes a sheet for the player, who edits it; the GM sees the change', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	await openTab(gm.page, 'Characters');
	const gmSheets = gm.page.getByRole('region', { name: 'Characters' });
	await gmSheets.getByLabel('Character name').fill('Mira');
	await gmSheets.getByLabel('Played by').selectOption({ label: player.name });
	await gmSheets.getByLabel('Class').fill('Rogue');
	await gmSheets.getByLabel('Max HP').fill('18');
	await gmSheets.getByRole('button', { name: 'Create character' }).click();
	await expect(gmSheets.getByRole('article', { name: 'Character Mira' })).toContainText('18 / 18');

	await openTab(player.page, 'Characters');
	const playerSheets = player.page.getByRole('region', { name: 'Characters' });
	const mira = playerSheets.getByRole('article', { name: 'Character Mira' });
	await expect(mira).toContainText('Mira (yours)');
	// Who plays whom shows with the participants.
	await expect(gm.page.getByRole('region', { name: 'Participants' })).toContainText('plays Mira');

	await mira.getByRole('button', { name: 'Edit Mira' }).click();
	await mira.getByLabel('Current HP').fill('7');
	await mira.getByLabel('Conditions').fill('poisoned');
	await mira.getByRole('button', { name: 'Save sheet' }).click();
	await expect(mira).toContainText('7 / 18');
	await expect(gmSheets.getByRole('article', { name: 'Character Mira' })).toContainText('7 / 18');
	await expect(gmSheets.getByRole('article', { name: 'Character Mira' })).toContainText('poisoned');
	await player.page.screenshot({ path: `${SCREENSHOTS}/characters-player-desktop.png` });
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('the tool panel offers the role its tools with forms from their schemas, and searches the rules', async ({
	browser
}) => {
	const { gm, player } = await gmAndPlayer(browser);
	await openTab(player.page, 'Tools');
	const tools = player.page.getByRole('region', { name: 'Tools' });

	await tools.getByLabel('Search the rules').fill('grapple');
	await tools.getByRole('button', { name: 'Search' }).click();
	await expect(tools.locator('mark').first()).toBeVisible();
	await expect(tools.getByText(/sections match/)).toBeVisible();

	// A player is offered the player's tools only.
	const choices = await tools.getByLabel('Tool').locator('option').allTextContents();
	expect(choices).toContain('roll_dice');
	expect(choices).not.toContain('create_character');
	await tools.getByLabel('Tool').selectOption('roll_dice');
	await tools.getByLabel('Expression *').fill('3d6+1');
	await tools.getByRole('button', { name: 'Call roll_dice' }).click();
	await expect(tools.locator('pre').first()).toContainText('3d6');
	await player.page.screenshot({ path: `${SCREENSHOTS}/tools-player-desktop.png` });

	// The GM has them all.
	await openTab(gm.page, 'Tools');
	const gmChoices = await gm.page.getByRole('region', { name: 'Tools' }).getByLabel('Tool').locator('option').allTextContents();
	expect(gmChoices).toContain('create_character');
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});

test('the table works by keyboard alone and on a phone-sized screen', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	const page = player.page;
	await page.setViewportSize({ width: 360, height: 740 });
	// The bottom bar: the roller is one tap away.
	await expect(page.getByRole('tab', { name: 'Rolls' })).toBeVisible();
	await page.getByLabel('Dice expression').focus();
	await page.keyboard.press('ControlOrMeta+a');
	await page.keyboard.type('/r 1d20+5 stealth');
	await page.keyboard.press('Enter');
	await expect(gm.page.getByRole('region', { name: 'Roll log' }).getByText('stealth')).toBeVisible();

	// Tabs move with the arrow keys and open their panel.
	await page.getByRole('tab', { name: 'Rolls' }).focus();
	await page.keyboard.press('ArrowRight');
	await expect(page.getByRole('tab', { name: 'Init' })).toBeFocused();
	await expect(page.getByRole('region', { name: 'Initiative' })).toBeVisible();
	await page.keyboard.press('ArrowLeft');
	await page.keyboard.press('ArrowLeft');
	await expect(page.getByRole('tab', { name: 'Map' })).toBeFocused();
	await expect(page.getByRole('region', { name: 'Canvas' })).toBeVisible();
	await page.screenshot({ path: `${SCREENSHOTS}/table-canvas-360.png` });

	// Drawing by keyboard: the pen goes down, moves, lifts; the GM gets the stroke.
	await page.getByTestId('canvas').focus();
	await page.keyboard.press('Space');
	await page.keyboard.press('ArrowRight');
	await page.keyboard.press('Shift+ArrowDown');
	await page.keyboard.press('Space');
	await expect(gm.page.getByTestId('canvas')).toHaveAttribute('data-strokes', '1');
	await expect(gm.page.getByTestId('cursor').filter({ hasText: player.name })).toBeVisible();

	// Nothing is wider than the screen.
	const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
	expect(overflow).toBeLessThanOrEqual(0);
	await page.getByRole('tab', { name: 'Map' }).press('ArrowRight');
	await page.screenshot({ path: `${SCREENSHOTS}/table-rolls-360.png` });
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});
