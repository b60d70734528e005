import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { expectNoConsoleErrors, gmAndPlayer, openTab, SCREENSHOTS } from './helpers';

/**
 * Claude Desktop's door: a `ttrpg-mcp` process over stdio on the bridge's own data directory
 * (the SDK's stdio client in Python, as Claude Desktop speaks it), making a change the player's
 * open page must show without a reload.
 */
function claudeDesktop(campaignId: string, tool: string, args: Record<string, unknown>): Record<string, unknown> {
	const python = resolve(import.meta.dirname, '..', '..', '..', '.venv', 'bin', 'python');
	const script = `
import asyncio, json, sys
from ttrpg_mcp.server.launch import connect

async def main() -> None:
    data_dir, campaign_id, tool, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    async with connect(data_dir) as session:
        if "character_name" in args:  # ids are the store's: look the sheet up by name
            listed = await session.call_tool("list_items", {"campaign_id": campaign_id, "kind": "characters"})
            name = args.pop("character_name")
            args["target_id"] = next(c["id"] for c in listed.structured_content["items"] if c["name"] == name)
        result = await session.call_tool(tool, args)
        assert not result.is_error, result.content
        print(json.dumps(result.structured_content))

asyncio.run(main())
`;
	const dataDir = process.env.TTRPG_E2E_DATA_DIR ?? '';
	const output = execFileSync(python, ['-c', script, dataDir, campaignId, tool, JSON.stringify(args)], {
		encoding: 'utf8',
		timeout: 120_000
	});
	return JSON.parse(output) as Record<string, unknown>;
}

test('a sheet, a note and a roll made over stdio by the MCP server appear on the player page live', async ({ browser }) => {
	const { gm, player, url } = await gmAndPlayer(browser);
	const campaignId = decodeURIComponent(new URL(url).pathname.split('/').filter(Boolean).at(-1) ?? '');
	await openTab(gm.page, 'Characters');
	const gmSheets = gm.page.getByRole('region', { name: 'Characters' });
	await gmSheets.getByLabel('Character name').fill('Mira');
	await gmSheets.getByLabel('Played by').selectOption({ label: player.name });
	await gmSheets.getByLabel('Max HP').fill('18');
	await gmSheets.getByRole('button', { name: 'Create character' }).click();
	await expect(gmSheets.getByRole('article', { name: 'Character Mira' })).toContainText('18 / 18');

	await openTab(player.page, 'Characters');
	const mira = player.page.getByRole('region', { name: 'Characters' }).getByRole('article', { name: 'Character Mira' });
	await expect(mira).toContainText('18 / 18');
	// A page that reloaded would lose this mark: the changes below must arrive without one.
	await player.page.evaluate(() => ((window as unknown as { unreloaded: boolean }).unreloaded = true));

	const hurt = claudeDesktop(campaignId, 'update_hp', { character_name: 'Mira', amount: 5, kind: 'damage' });
	expect(hurt['hp_after']).toBe(13);
	await expect(mira).toContainText('13 / 18');

	await openTab(player.page, 'Notes');
	const notes = player.page.getByRole('region', { name: 'Campaign notes' });
	await expect(notes.getByText('No campaign notes yet.')).toBeVisible();
	claudeDesktop(campaignId, 'add_note', {
		campaign_id: campaignId,
		title: 'The ferryman',
		body: 'He takes silver, never gold.',
		visibility: 'players'
	});
	await expect(notes.getByTestId('campaign-note')).toContainText('He takes silver, never gold.');
	await expect(notes.getByText('No campaign notes yet.')).toHaveCount(0);

	// A GM-only roll made with the roll_dice tool: the player sees that it was rolled, and how, not what.
	await openTab(player.page, 'Rolls');
	claudeDesktop(campaignId, 'roll_dice', { expression: '1d20', campaign_id: campaignId, visibility: 'gm', purpose: 'ambush' });
	const secret = player.page.getByTestId('roll').filter({ hasText: 'Rolled in secret' });
	await expect(secret).toHaveCount(1);
	await expect(secret.getByTestId('roll-source')).toHaveText('dice tool');
	expect(await player.page.evaluate(() => (window as unknown as { unreloaded?: boolean }).unreloaded)).toBe(true);
	await player.page.screenshot({ path: `${SCREENSHOTS}/live-content-player.png` });
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});
