import { describe, expect, it } from 'vitest';
import { parseRollCommand, splitDropped } from './rolls';

describe('splitDropped', () => {
	it('marks the dice the engine struck through and keeps the rest as text', () => {
		expect(splitDropped('2d20kh1 (20, ~~11~~) + 5 = 25')).toEqual([
			{ text: '2d20kh1 (20, ', dropped: false },
			{ text: '11', dropped: true },
			{ text: ') + 5 = 25', dropped: false }
		]);
	});

	it('leaves text without dropped dice whole, and markup as plain text', () => {
		expect(splitDropped('<b>1d4</b> (3) = 3')).toEqual([{ text: '<b>1d4</b> (3) = 3', dropped: false }]);
		expect(splitDropped('')).toEqual([]);
	});
});

describe('parseRollCommand', () => {
	it('reads /r and /roll with a purpose as chat commands do', () => {
		expect(parseRollCommand('/r 1d20+5 stealth check')).toEqual({ expression: '1d20+5', purpose: 'stealth check' });
		expect(parseRollCommand('/ROLL 2d6')).toEqual({ expression: '2d6', purpose: '' });
	});

	it('passes a plain expression through', () => {
		expect(parseRollCommand('  4d6kh3 ')).toEqual({ expression: '4d6kh3', purpose: '' });
	});
});
