/**
 * Access tokens: where the client gets them, and when to renew one. The bridge's tokens are JWTs;
 * only their `exp` and `iat` claims are read here (never trusted for anything but timing).
 */

/** Where the client gets its access token, and (optionally) a fresh one before it expires. */
export interface TokenSource {
	accessToken(): string;
	/** A new access token (e.g. through `POST /api/auth/refresh`); absent: no renewal. */
	refresh?(): Promise<string>;
}

export function staticToken(token: string): TokenSource {
	return { accessToken: () => token };
}

interface Claims {
	exp?: number;
	iat?: number;
}

/** The `exp` and `iat` claims of a JWT (seconds), or nulls when it is not one. */
export function tokenTimes(token: string): { expiresAt: number | null; issuedAt: number | null } {
	const payload = token.split('.')[1];
	if (payload === undefined) return { expiresAt: null, issuedAt: null };
	try {
		const json = atob(payload.replaceAll('-', '+').replaceAll('_', '/'));
		const claims = JSON.parse(json) as Claims;
		return {
			expiresAt: typeof claims.exp === 'number' ? claims.exp : null,
			issuedAt: typeof claims.iat === 'number' ? claims.iat : null
		};
	} catch {
		return { expiresAt: null, issuedAt: null };
	}
}

/** Renew this long before expiry by default... */
export const DEFAULT_RENEW_BEFORE_MS = 60_000;

/**
 * Milliseconds from `nowMs` until the token should be renewed, or null when it carries no expiry.
 * By default a minute ahead of expiry, but not before half its life (a 30 s token is renewed at
 * 15 s); an explicit `renewBeforeMs` is honoured up to 90 % of its life. Never negative.
 */
export function renewalDelay(
	token: string,
	renewBeforeMs?: number,
	nowMs: number = Date.now()
): number | null {
	const { expiresAt, issuedAt } = tokenTimes(token);
	if (expiresAt === null) return null;
	const expiresMs = expiresAt * 1000;
	const before = renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS;
	const lifetime = issuedAt !== null ? expiresMs - issuedAt * 1000 : before * 2;
	const ahead = Math.min(before, lifetime * (renewBeforeMs === undefined ? 0.5 : 0.9));
	return Math.max(0, expiresMs - ahead - nowMs);
}
