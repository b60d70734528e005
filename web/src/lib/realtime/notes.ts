/**
 * What the notes panel shows: the notes it loaded (`list_items`), merged with what content events
 * said since (the table's `notes` map). Kept apart from the component so the merge is tested
 * without a browser: a note deleted, or no longer readable by this seat (turned GM-only while
 * loaded), leaves; an update replaces the loaded fields; a note first seen in an event joins.
 */
import { isGoneNote, type Entity } from './table';

export interface Note {
	id: string;
	title: string;
	body: string;
	visibility?: string;
	author?: string;
	created_at?: string;
	hidden?: boolean;
}

/** The notes to show, oldest first: `loaded` less what left this seat's view, plus what events added. */
export function shownNotes(loaded: Note[], live: Map<string, Entity>): Note[] {
	const known = new Set(loaded.map((note) => note.id));
	const merged = loaded
		.filter((note) => !isGoneNote(live.get(note.id)))
		.map((note) => ({ ...note, ...((live.get(note.id) as Partial<Note> | undefined) ?? {}) }));
	for (const [id, note] of live) {
		if (!known.has(id) && typeof note['body'] === 'string') merged.push({ ...(note as unknown as Note), id });
	}
	return merged
		.filter((note) => !note.hidden)
		.sort((a, b) => (a.created_at ?? '').localeCompare(b.created_at ?? ''));
}
