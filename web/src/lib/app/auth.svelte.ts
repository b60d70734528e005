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
	/** The access token's lifetime (ms): short-lived tokens are renewed at half their life. */
	lifetime: number;
}

function margin(stored: Stored): number {
	return Math.min(RENEW_MARGIN_MS, (stored.lifetime || RENEW_MARGIN_MS * 2) / 2);
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
			expiresAt: Date.now() + pair.expires_in * 1000,
			lifetime: pair.expires_in * 1000
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
		if (current.expiresAt - Date.now() > margin(current)) return current.access;
		return this.renew();
	}

	/**
	 * A new token pair now (the realtime client asks shortly before its token expires). Refresh
	 * tokens work once, and every tab of this browser shares them: renewals take a lock across
	 * tabs, and a tab that finds the pair already renewed by another simply adopts it.
	 */
	renew(): Promise<string> {
		if (!this.current) return Promise.reject(new Error('not signed in'));
		this.#renewing ??= withRenewalLock(async () => {
			const seen = this.current;
			const stored = load();
			if (stored && seen && stored.refresh !== seen.refresh && stored.expiresAt - Date.now() > margin(stored)) {
				this.current = stored;
				return stored.access;
			}
			if (!seen) throw new Error('not signed in');
			try {
				const pair = await api.refresh(seen.refresh);
				this.#keep(pair);
				return pair.access_token;
			} catch (error) {
				if ((error as { status?: number }).status === 401) this.signOut();
				throw error;
			}
		}).finally(() => {
			this.#renewing = null;
		});
		return this.#renewing;
	}

	/** Follow sign-ins, renewals and sign-outs made in other tabs. */
	follow(): void {
		if (typeof window === 'undefined') return;
		window.addEventListener('storage', (event) => {
			if (event.key === STORAGE_KEY) this.current = load();
		});
	}
}

/** Run `task` holding a lock shared by every tab of this origin (Web Locks), where there is one. */
function withRenewalLock<T>(task: () => Promise<T>): Promise<T> {
	const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
	return locks ? (locks.request('ttrpg.auth.renew', task) as Promise<T>) : task();
}

export const auth = new Auth();
auth.follow();
