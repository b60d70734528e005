/**
 * A minimal observable value that follows the Svelte store contract (`subscribe(run)` calls
 * `run` at once and on every change, and returns an unsubscribe function), so `$store` works in
 * components while the realtime client stays free of any framework import and runs in plain Node.
 */

export type Subscriber<T> = (value: T) => void;
export type Unsubscriber = () => void;

/** What a component reads: the Svelte store contract. */
export interface Readable<T> {
	subscribe(run: Subscriber<T>): Unsubscriber;
}

/** A store the client owns and writes. */
export interface Writable<T> extends Readable<T> {
	set(value: T): void;
	update(updater: (value: T) => T): void;
}

/** A value store; subscribers are told only when the value is replaced by a different one. */
export function writable<T>(initial: T): Writable<T> {
	let value = initial;
	const subscribers = new Set<Subscriber<T>>();
	const set = (next: T): void => {
		if (Object.is(next, value)) return;
		value = next;
		for (const run of [...subscribers]) run(value);
	};
	return {
		subscribe(run) {
			subscribers.add(run);
			run(value);
			return () => {
				subscribers.delete(run);
			};
		},
		set,
		update(updater) {
			set(updater(value));
		}
	};
}

/** A store computed from another; it follows its source only while someone subscribes. */
export function derived<S, T>(source: Readable<S>, compute: (value: S) => T): Readable<T> {
	const subscribers = new Set<Subscriber<T>>();
	let stop: Unsubscriber | undefined;
	let current: T;
	let ready = false;
	return {
		subscribe(run) {
			subscribers.add(run);
			if (stop === undefined) {
				stop = source.subscribe((value) => {
					const next = compute(value);
					if (ready && Object.is(next, current)) return;
					current = next;
					ready = true;
					for (const subscriber of [...subscribers]) subscriber(current);
				});
			} else {
				run(current);
			}
			return () => {
				subscribers.delete(run);
				if (subscribers.size === 0 && stop !== undefined) {
					stop();
					stop = undefined;
					ready = false;
				}
			};
		}
	};
}

/** The current value of a store (subscribes and unsubscribes at once). */
export function get<T>(store: Readable<T>): T {
	let value!: T;
	store.subscribe((current) => {
		value = current;
	})();
	return value;
}
