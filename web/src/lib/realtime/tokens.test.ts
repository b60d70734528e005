import { describe, expect, it } from 'vitest';
import { renewalDelay, tokenTimes } from './tokens';

function jwt(claims: Record<string, unknown>): string {
	const part = (value: unknown) => btoa(JSON.stringify(value)).replaceAll('=', '').replaceAll('+', '-').replaceAll('/', '_');
	return `${part({ alg: 'HS256' })}.${part(claims)}.signature`;
}

describe('token timing', () => {
	it('reads exp and iat from a JWT, and nothing from something else', () => {
		expect(tokenTimes(jwt({ exp: 2000, iat: 1100 }))).toEqual({ expiresAt: 2000, issuedAt: 1100 });
		expect(tokenTimes('opaque')).toEqual({ expiresAt: null, issuedAt: null });
	});

	it('renews a minute ahead, but a short-lived token only halfway', () => {
		expect(renewalDelay(jwt({ iat: 1000, exp: 1900 }), undefined, 1_000_000)).toBe(840_000);
		expect(renewalDelay(jwt({ iat: 1000, exp: 1030 }), undefined, 1_000_000)).toBe(15_000);
	});

	it('honours an explicit lead up to 90 % of the life, and is never negative', () => {
		expect(renewalDelay(jwt({ iat: 1000, exp: 1030 }), 28_000, 1_000_000)).toBe(3_000);
		expect(renewalDelay(jwt({ iat: 1000, exp: 1030 }), 5_000, 1_040_000)).toBe(0);
		expect(renewalDelay('opaque', 5_000)).toBeNull();
	});
});
