import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff';

const options = { initialMs: 100, maxMs: 1_000, factor: 2 };

describe('backoffDelay', () => {
	it('doubles the nominal delay per attempt up to the cap', () => {
		const top = (attempt: number) => backoffDelay(attempt, options, () => 0.999999);
		expect([0, 1, 2, 3, 4, 5].map(top)).toEqual([100, 200, 400, 800, 1000, 1000]);
	});

	it('waits at least half the nominal delay, whatever the jitter', () => {
		expect(backoffDelay(3, options, () => 0)).toBe(400);
		for (let i = 0; i < 100; i += 1) {
			const delay = backoffDelay(3, options);
			expect(delay).toBeGreaterThanOrEqual(400);
			expect(delay).toBeLessThanOrEqual(800);
		}
	});

	it('spreads clients dropped at the same moment', () => {
		const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(4, options)));
		expect(delays.size).toBeGreaterThan(10);
	});
});
