import { expect, test } from '@playwright/test';
import { writeFileSync } from 'node:fs';
import { expectNoConsoleErrors, gmAndPlayer, roll, SCREENSHOTS } from './helpers';

declare global {
	interface Window {
		__clicks?: number[];
		__seen?: Record<string, number>;
	}
}

const ROLLS = 50;

/**
 * How long a roll takes from the player's click on Roll to the roll showing in the GM's log, in
 * another browser context: both pages read the same clock (performance.timeOrigin + now). The
 * numbers go to test-results/roll-latency.json; the test asserts only that all 50 arrived.
 */
test('time from clicking Roll to the roll showing in the other browser, over 50 rolls', async ({ browser }) => {
	const { gm, player } = await gmAndPlayer(browser);
	await player.page.evaluate(() => {
		window.__clicks = [];
		document.addEventListener(
			'click',
			(event) => {
				const button = (event.target as Element | null)?.closest('button');
				if (button?.textContent?.trim() === 'Roll') window.__clicks!.push(performance.timeOrigin + performance.now());
			},
			true
		);
	});
	await gm.page.evaluate(() => {
		window.__seen = {};
		const log = document.querySelector('[aria-label="Roll log"]')!;
		new MutationObserver(() => {
			for (const entry of log.querySelectorAll('[data-testid="roll"]')) {
				const purpose = entry.querySelector('.purpose')?.textContent ?? '';
				if (purpose && !(purpose in window.__seen!) && entry.querySelector('[data-testid="roll-total"]')) {
					window.__seen![purpose] = performance.timeOrigin + performance.now();
				}
			}
		}).observe(log, { childList: true, subtree: true, characterData: true });
	});

	for (let i = 0; i < ROLLS; i += 1) {
		await roll(player.page, `/r 1d20 lat-${i}`);
		await expect.poll(() => gm.page.evaluate((key) => key in (window.__seen ?? {}), `lat-${i}`)).toBe(true);
	}
	const clicks = await player.page.evaluate(() => window.__clicks ?? []);
	const seen = await gm.page.evaluate(() => window.__seen ?? {});
	expect(clicks).toHaveLength(ROLLS);
	const latencies = clicks.map((clicked, i) => (seen[`lat-${i}`] ?? Number.NaN) - clicked).sort((a, b) => a - b);
	expect(latencies.every((ms) => Number.isFinite(ms) && ms >= 0)).toBe(true);
	const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
	const report = {
		rolls: ROLLS,
		p50_ms: Math.round(at(0.5) * 10) / 10,
		p95_ms: Math.round(at(0.95) * 10) / 10,
		min_ms: Math.round(at(0) * 10) / 10,
		max_ms: Math.round((latencies.at(-1) ?? Number.NaN) * 10) / 10
	};
	writeFileSync(`${SCREENSHOTS}/roll-latency.json`, JSON.stringify(report, null, 2) + '\n');
	console.log(`roll click -> other browser: ${JSON.stringify(report)}`);
	expectNoConsoleErrors(gm, player);
	await gm.context.close();
	await player.context.close();
});
