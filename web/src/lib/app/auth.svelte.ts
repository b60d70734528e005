/**
 * Who is signed in, kept across reloads (localStorage) and shared by every page. The access
 * token is short-lived: `accessToken()` renews it with the refresh token shortly before expiry,
 * one renewal at a time however many callers ask at once.
 */
import { api, type TokenPair, type UserInfo } from './api';

const STORAGE_KEY = 'ttrpg.auth';
// Renew this long before the access token expires, so a request never carries a dead one.
const RENEW_MARGIN_MS = 60_000;

interface Stored {
	user: UserInfo;
	access: string;
	refresh: string;
	expiresAt: number;
}

function load(): Stored | null {
	if (typeof localStorage === 'undefined') return null;
	try {
		const raw = localStorage.getItem(STORAGE_KEY);
		return raw ? (JSON.parse(raw) as Stored) : null;
	} catch {
		return null;
	}
}

class Auth {
	current = $state<Stored | null>(load());
	#renewing: Promise<string> | null = null;

	get user(): UserInfo | null {
		return this.current?.user ?? null;
	}

	#keep(pair: TokenPair): void {
		this.current = {
			user: pair.user_info,
			access: pair.access_token,
			refresh: pair.refresh_token,
			expiresAt: Date.now() + pair.expires_in * 1000
		};
		localStorage.setItem(STORAGE_KEY, JSON.stringify(this.current));
	}

	async signIn(name: string, password: string): Promise<void> {
		this.#keep(await api.login(name, password));
	}

	async register(name: string, password: string): Promise<void> {
		this.#keep(await api.register(name, password));
	}

	signOut(): void {
		const refresh = this.current?.refresh;
		this.current = null;
		localStorage.removeItem(STORAGE_KEY);
		if (refresh) void api.logout(refresh).catch(() => undefined);
	}

	/** A valid access token, renewed when close to expiry; signs out when renewal is refused. */
	async accessToken(): Promise<string> {
		const current = this.current;
		if (!current) throw new Error('not signed in');
		if (current.expiresAt - Date.now() > RENEW_MARGIN_MS) return current.access;
		return this.renew();
	}

	/** A new token pair now (the realtime client asks shortly before its token expires). */
	renew(): Promise<string> {
		const current = this.current;
		if (!current) return Promise.reject(new Error('not signed in'));
		this.#renewing ??= api
			.refresh(current.refresh)
			.then((pair) => {
				this.#keep(pair);
				return pair.access_token;
			})
			.catch((error: unknown) => {
				if ((error as { status?: number }).status === 401) this.signOut();
				throw error;
			})
			.finally(() => {
				this.#renewing = null;
			});
		return this.#renewing;
	}
}

export const auth = new Auth();
