import { describe, expect, it } from 'vitest';
import { argumentsOf, fieldsOf, splitMarked } from './schema';

// The shape pydantic gives an MCP tool's input schema.
const SEARCH = {
	type: 'object',
	properties: {
		query: { type: 'string', maxLength: 500, description: 'Words to look for' },
		source: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
		kind: { anyOf: [{ enum: ['rule', 'spell'], type: 'string' }, { type: 'null' }], default: null },
		limit: { type: 'integer', default: 10 },
		exact: { type: 'boolean', default: false },
		tags: { type: 'array', items: { type: 'string' } },
		abilities: { anyOf: [{ type: 'object', additionalProperties: { type: 'integer' } }, { type: 'null' }] },
		notes: { type: 'string', default: '' }
	},
	required: ['query']
};

describe('fieldsOf', () => {
	it('makes one field per property, of a kind a person can fill in', () => {
		const fields = fieldsOf(SEARCH);
		expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
			['query', 'text', true],
			['source', 'text', false],
			['kind', 'choice', false],
			['limit', 'integer', false],
			['exact', 'boolean', false],
			['tags', 'list', false],
			['abilities', 'json', false],
			['notes', 'longtext', false]
		]);
		expect(fields.find((f) => f.name === 'kind')?.choices).toEqual(['rule', 'spell']);
	});

	it('copes with a tool that takes nothing', () => {
		expect(fieldsOf(undefined)).toEqual([]);
		expect(fieldsOf({ type: 'object' })).toEqual([]);
	});
});

describe('argumentsOf', () => {
	const fields = fieldsOf(SEARCH);

	it('turns the form back into typed arguments, leaving empty optional fields out', () => {
		expect(
			argumentsOf(fields, {
				query: ' grapple ',
				source: '',
				kind: 'rule',
				limit: '5',
				exact: true,
				tags: 'a, b,,c',
				abilities: '{"str": 15}',
				notes: ''
			})
		).toEqual({ query: 'grapple', kind: 'rule', limit: 5, exact: true, tags: ['a', 'b', 'c'], abilities: { str: 15 } });
	});

	it('says which field is wrong, in words', () => {
		expect(() => argumentsOf(fields, { query: '' })).toThrow('Query is required.');
		expect(() => argumentsOf(fields, { query: 'x', limit: '2.5' })).toThrow('Limit must be a whole number.');
		expect(() => argumentsOf(fields, { query: 'x', abilities: '{str' })).toThrow('Abilities must be JSON');
	});
});

describe('splitMarked', () => {
	it('finds the words the search marked', () => {
		expect(splitMarked('you **grapple** a **foe**')).toEqual([
			{ text: 'you ', marked: false },
			{ text: 'grapple', marked: true },
			{ text: ' a ', marked: false },
			{ text: 'foe', marked: true },
			{ text: '', marked: false }
		]);
	});
});
