/**
 * Form fields from a tool's JSON Schema (`inputSchema`): each property becomes one field of a
 * kind a person can fill in, and the filled form becomes the tool's arguments again.
 */

export type FieldKind = 'text' | 'longtext' | 'number' | 'integer' | 'boolean' | 'choice' | 'list' | 'json';

export interface FormField {
	name: string;
	label: string;
	kind: FieldKind;
	required: boolean;
	description: string;
	choices: string[];
	defaultValue: unknown;
}

type Schema = Record<string, unknown>;

/** The schema itself, or the non-null branch of `anyOf: [X, {type: null}]` as pydantic writes optionals. */
function unwrap(schema: Schema): Schema {
	const anyOf = schema.anyOf as Schema[] | undefined;
	if (Array.isArray(anyOf)) {
		const concrete = anyOf.filter((s) => s.type !== 'null');
		if (concrete.length === 1) return { ...concrete[0], ...schema, anyOf: undefined };
	}
	return schema;
}

function kindOf(schema: Schema): { kind: FieldKind; choices: string[] } {
	const s = unwrap(schema);
	if (Array.isArray(s.enum)) return { kind: 'choice', choices: (s.enum as unknown[]).map(String) };
	switch (s.type) {
		case 'string':
			return { kind: ((s.maxLength as number | undefined) ?? 0) > 1000 ? 'longtext' : 'text', choices: [] };
		case 'integer':
			return { kind: 'integer', choices: [] };
		case 'number':
			return { kind: 'number', choices: [] };
		case 'boolean':
			return { kind: 'boolean', choices: [] };
		case 'array': {
			const items = (s.items as Schema | undefined) ?? {};
			return { kind: items.type === 'string' || items.type === undefined ? 'list' : 'json', choices: [] };
		}
		default:
			return { kind: 'json', choices: [] };
	}
}

function labelOf(name: string, schema: Schema): string {
	const title = typeof schema.title === 'string' ? schema.title : name.replaceAll('_', ' ');
	return title.charAt(0).toUpperCase() + title.slice(1);
}

// Free-text fields people write paragraphs in, whatever their schema's limits say.
const LONG_TEXT = /(^|_)(notes?|description|body|text|house_rules)$/;

export function fieldsOf(inputSchema: unknown): FormField[] {
	const schema = (inputSchema ?? {}) as Schema;
	const properties = (schema.properties ?? {}) as Record<string, Schema>;
	const required = new Set((schema.required as string[] | undefined) ?? []);
	return Object.entries(properties).map(([name, property]) => {
		const found = kindOf(property);
		const kind: FieldKind = found.kind === 'text' && LONG_TEXT.test(name) ? 'longtext' : found.kind;
		const choices = found.choices;
		return {
			name,
			label: labelOf(name, property),
			kind,
			required: required.has(name),
			description: typeof property.description === 'string' ? property.description : '',
			choices,
			defaultValue: property.default
		};
	});
}

/** The form's text values as tool arguments; empty optional fields are left out. Throws on bad input. */
export function argumentsOf(fields: FormField[], values: Record<string, string | boolean>): Record<string, unknown> {
	const args: Record<string, unknown> = {};
	for (const field of fields) {
		const raw = values[field.name];
		if (field.kind === 'boolean') {
			if (raw !== undefined && raw !== (field.defaultValue ?? false)) args[field.name] = Boolean(raw);
			continue;
		}
		const text = typeof raw === 'string' ? raw.trim() : '';
		if (text === '') {
			if (field.required) throw new Error(`${field.label} is required.`);
			continue;
		}
		switch (field.kind) {
			case 'integer':
			case 'number': {
				const value = Number(text);
				if (!Number.isFinite(value) || (field.kind === 'integer' && !Number.isInteger(value))) {
					throw new Error(`${field.label} must be ${field.kind === 'integer' ? 'a whole number' : 'a number'}.`);
				}
				args[field.name] = value;
				break;
			}
			case 'list':
				args[field.name] = text
					.split(',')
					.map((item) => item.trim())
					.filter(Boolean);
				break;
			case 'json':
				try {
					args[field.name] = JSON.parse(text);
				} catch {
					throw new Error(`${field.label} must be JSON, e.g. {"str": 15}.`);
				}
				break;
			default:
				args[field.name] = text;
		}
	}
	return args;
}

export interface TextPart {
	text: string;
	marked: boolean;
}

/** A search snippet split where FTS marked the matched words (`**word**`), for <mark> without markup. */
export function splitMarked(snippet: string): TextPart[] {
	return snippet.split('**').map((text, i) => ({ text, marked: i % 2 === 1 }));
}
