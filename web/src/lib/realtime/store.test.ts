import { describe, expect, it } from 'vitest';
import { derived, get, writable } from './store';

describe('stores', () => {
	it('tells subscribers at once and on every change, not on the same value', () => {
		const store = writable(1);
		const seen: number[] = [];
		const stop = store.subscribe((value) => seen.push(value));
		store.set(1);
		store.set(2);
		store.update((value) => value + 1);
		stop();
		store.set(9);
		expect(seen).toEqual([1, 2, 3]);
		expect(get(store)).toBe(9);
	});

	it('derives lazily and follows its source while subscribed', () => {
		const source = writable(2);
		let computed = 0;
		const doubled = derived(source, (value) => {
			computed += 1;
			return value * 2;
		});
		expect(computed).toBe(0);
		const seen: number[] = [];
		const stop = doubled.subscribe((value) => seen.push(value));
		source.set(3);
		stop();
		source.set(4);
		expect(seen).toEqual([4, 6]);
		expect(get(doubled)).toBe(8);
	});
});
