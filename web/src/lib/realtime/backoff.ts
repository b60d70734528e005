/**
 * Reconnect delays: exponential growth with "equal jitter" (half fixed, half random), so a table
 * of clients dropped by one bridge restart does not come back in one thundering wave, while each
 * client still waits at least half the nominal delay.
 */

export interface BackoffOptions {
	/** Delay before the first retry, in ms. */
	initialMs: number;
	/** Upper bound of any delay, in ms. */
	maxMs: number;
	/** Growth per attempt. */
	factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 15_000, factor: 2 };

/** The delay before retry number `attempt` (0-based); `random` in [0, 1) is injectable for tests. */
export function backoffDelay(
	attempt: number,
	options: BackoffOptions = DEFAULT_BACKOFF,
	random: () => number = Math.random
): number {
	const nominal = Math.min(options.maxMs, options.initialMs * options.factor ** Math.max(0, attempt));
	const half = nominal / 2;
	return Math.round(half + random() * half);
}
