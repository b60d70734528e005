import { describe, expect, it } from 'vitest';
import { Outbox, type OutboxEntry } from './outbox';

function entry(id: string, change = true): OutboxEntry {
	return {
		id,
		message: { id, type: change ? 'state_update' : 'tool_discover' },
		resend: true,
		change,
		timeoutMs: 1000,
		sentOn: null,
		notBefore: 0,
		sends: 0,
		resolve: () => {},
		reject: () => {},
		timer: null
	};
}

describe('Outbox', () => {
	it('keeps requests in the order made and hands back the one a reply answers', () => {
		const outbox = new Outbox();
		for (const id of ['a', 'b', 'c']) outbox.add(entry(id));
		outbox.add(entry('read', false));
		expect(outbox.changes).toBe(3);
		expect(outbox.take('b')?.id).toBe('b');
		expect(outbox.take('b')).toBeUndefined();
		expect(outbox.all().map((e) => e.id)).toEqual(['a', 'c', 'read']);
	});

	it('lists what was not sent on the current connection yet, for the resend', () => {
		const outbox = new Outbox();
		const a = entry('a');
		const b = entry('b');
		outbox.add(a);
		outbox.add(b);
		a.sentOn = 1;
		b.sentOn = 1;
		expect(outbox.unsentOn(1)).toEqual([]);
		expect(outbox.unsentOn(2).map((e) => e.id)).toEqual(['a', 'b']);
	});
});
