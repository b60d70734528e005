"""Turn rules and lore documents into searchable sections.

The server keeps its reference material in a SQLite FTS5 index; this module is the pure half
of that pipeline: it reads Markdown, plain text and PDF files and cuts them into
:class:`Section` rows, each small enough to be a useful search hit and carrying enough
context (its heading trail) to be read on its own. Nothing here touches the database, so the
parsing rules can be tested without one.

Design:

* **Sections follow the document's own structure.** Markdown splits at ATX headings ``#`` to
  ``####`` (deeper headings stay inside their section, where they are usually stat-block
  labels); plain text splits at setext or ALL-CAPS headings and otherwise groups paragraphs
  into parts of roughly 2,000 characters; PDFs follow their outline (bookmarks) or, without
  one, their pages. A heading whose body is empty (a mere parent of subsections) is not a
  section of its own, but it still lends its title to the ``path`` of its children.
* **Kinds are metadata, not guesses.** A section is a ``rule``, ``spell``, ``monster``,
  ``item`` or ``lore``. The caller may force one; otherwise Markdown says so with a
  ``Kind: spell`` line right under a heading (inherited by subsections) or a ``kind:`` key in
  its front matter. Anything else is ``lore``. A misspelt kind is an :class:`IngestError`
  rather than a silent fallback, because a spell filed as lore would never be found by a
  kind-filtered search.
* **Slugs are stable identifiers.** They derive from titles and are made unique within a
  source (``fireball``, ``fireball-2``) across a whole :func:`load_path` call, so the store can
  use ``(source, slug)`` as a key and links to sections survive re-ingesting.
* **Bounded rows.** Bodies over 50,000 characters are split into ``(part N)`` sections at
  paragraph, then line, then word boundaries, so a single FTS row never dwarfs the rest.
* **One error type.** Every problem with an input (unreadable, undecodable, encrypted or
  corrupt file, unknown kind or suffix, nothing to index) raises :class:`IngestError`, a
  ``ValueError`` whose message names the file; library exceptions from ``pypdf`` never escape.

The folder ``compendium/`` next to this module holds the project's original sample content
(source ``starter``, one Markdown file per theme); the server loads it with :func:`load_path`
on first start so that a fresh install has rules, spells, monsters, items and lore to search.
The folder deliberately has no README: every Markdown file in it is ingested.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pypdf import PdfReader

__all__ = [
    "COMPENDIUM_DIR",
    "KINDS",
    "IngestError",
    "Section",
    "load_path",
    "sections_from_markdown",
    "sections_from_pdf",
    "sections_from_text",
    "slugify",
]

KINDS: tuple[str, ...] = ("rule", "spell", "monster", "item", "lore")

#: The shipped sample content, loaded by the server on first start.
COMPENDIUM_DIR: Path = Path(__file__).resolve().parent / "compendium"

_DEFAULT_KIND = "lore"
_SLUG_MAX = 80
_MAX_BODY_CHARS = 50_000
_TEXT_PART_CHARS = 2_000
_CAPS_HEADING_MAX = 80
_PATH_SEP = " > "

_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
_TEXT_SUFFIXES = frozenset({".txt"})
_PDF_SUFFIXES = frozenset({".pdf"})
_SUPPORTED_SUFFIXES = _MARKDOWN_SUFFIXES | _TEXT_SUFFIXES | _PDF_SUFFIXES

_NON_SLUG = re.compile(r"[^a-z0-9]+")
_SOURCE_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Levels 1-4 only: deeper headings stay in their section's body (see the module docstring).
_ATX_HEADING = re.compile(r" {0,3}(#{1,4})(?:[ \t]+(.*?))?[ \t]*")
# A closing run of '#' is decoration, but only when separated by a space ("C#" keeps its '#').
_ATX_CLOSING = re.compile(r"(?:^|[ \t]+)#+$")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")
_KIND_MARKER = re.compile(r"[ \t]*kind[ \t]*:[ \t]*(.*?)[ \t]*", re.IGNORECASE)
_FRONT_MATTER_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)[ \t]*:[ \t]*(.*)")
_SETEXT_UNDERLINE = re.compile(r"[ \t]*(?:={3,}|-{3,})[ \t]*")
_BLANK_LINE_SPLIT = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
# How an over-long body is cut, coarsest first; the joiner puts back what the split removed.
_CHUNK_LEVELS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_BLANK_LINE_SPLIT, "\n\n"),
    (re.compile(r"\n"), "\n"),
    (re.compile(r"[ \t]+"), " "),
)


class IngestError(ValueError):
    """A document could not be turned into sections; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class Section:
    """One searchable piece of a document: a heading and the text under it."""

    source: str
    """The source's slug, e.g. ``"starter"`` (lowercase, ``[a-z0-9-]``)."""
    slug: str
    """The section's slug, unique within its source, e.g. ``"fireball"`` or ``"fireball-2"``."""
    title: str
    """The heading text, e.g. ``"Fireball"``."""
    kind: str
    """One of :data:`KINDS`."""
    path: str
    """The heading trail for context, e.g. ``"Spells > Evocation > Fireball"``."""
    body: str
    """The section's text without its heading line, stripped."""


@dataclass(frozen=True, slots=True)
class _Draft:
    """A section before it has a source and a unique slug (both depend on the whole load)."""

    title: str
    kind: str
    trail: tuple[str, ...]
    body: str


def slugify(text: str) -> str:
    """A lowercase ASCII slug of ``text``: ``[a-z0-9-]``, at most 80 chars, never empty."""
    # NFKD splits "é" into "e" + a combining accent, which the ASCII encode then drops.
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    # The ASCII encode already drops curly apostrophes; dropping straight ones too makes
    # "Wayfinder's" and "Wayfinder\u2019s" the same slug ("wayfinders", not "wayfinder-s").
    ascii_text = ascii_text.replace("'", "")
    slug = _NON_SLUG.sub("-", ascii_text.lower()).strip("-")
    # Trim again after cutting so a slug never ends in the hyphen the cut exposed.
    return slug[:_SLUG_MAX].rstrip("-") or "section"


def sections_from_markdown(
    text: str, *, source: str, kind: str | None = None, origin: str = "<text>"
) -> list[Section]:
    """Sections of a Markdown document, split at headings ``#`` to ``####``.

    ``source`` names the sections' source (front matter ``source`` is only consulted by
    :func:`load_path`); ``kind``, when given, overrides every marker; ``origin`` is the file
    name used in error messages and for the title of text before the first heading.
    """
    _check_source(source, origin)
    forced = None if kind is None else _check_kind(kind, origin)
    _, drafts = _parse_markdown(text, kind=forced, origin=origin)
    return _finish(_require_text(drafts, origin), source, set())


def sections_from_text(
    text: str, *, source: str, kind: str | None = None, origin: str = "<text>"
) -> list[Section]:
    """Sections of a plain-text document: at setext or ALL-CAPS headings, else by paragraphs."""
    _check_source(source, origin)
    forced = None if kind is None else _check_kind(kind, origin)
    drafts = _parse_text(text, kind=forced or _DEFAULT_KIND, origin=origin)
    return _finish(_require_text(drafts, origin), source, set())


def sections_from_pdf(path: Path, *, source: str, kind: str | None = None) -> list[Section]:
    """Sections of a PDF: one per outline entry if it has bookmarks, else one per page."""
    origin = str(path)
    _check_source(source, origin)
    forced = None if kind is None else _check_kind(kind, origin)
    drafts = _parse_pdf(Path(path), kind=forced or _DEFAULT_KIND)
    return _finish(_require_text(drafts, origin), source, set())


def load_path(path: Path, *, source: str | None = None, kind: str | None = None) -> list[Section]:
    """Sections of a file, or of every supported file under a directory.

    Files are chosen by suffix (``.md``/``.markdown``, ``.txt``, ``.pdf``); a directory is
    walked recursively in sorted order, skipping hidden files and folders and other suffixes.
    Each file's source is ``source`` if given, else its front matter ``source``, else the slug
    of the file's stem (of the directory's name when loading a directory). Slugs are unique
    within each source across the whole load.
    """
    path = Path(path)
    origin = str(path)
    if source is not None:
        _check_source(source, origin)
    forced = None if kind is None else _check_kind(kind, origin)

    if path.is_dir():
        files = _supported_files(path)
        if not files:
            raise IngestError(f"{path}: no {_suffix_list()} files to load")
        # resolve() so that "." still yields the folder's real name.
        directory_source: str | None = slugify(path.resolve().name)
    elif path.is_file():
        if path.suffix.lower() not in _SUPPORTED_SUFFIXES:
            raise IngestError(
                f"{path}: unsupported file type {path.suffix or '(none)'!r}; use {_suffix_list()}"
            )
        files = [path]
        directory_source = None
    else:
        raise IngestError(f"{path}: no such file or directory")

    taken: dict[str, set[str]] = {}
    sections: list[Section] = []
    for file in files:
        fallback = directory_source or slugify(file.stem)
        file_source, drafts = _load_file(file, source=source, kind=forced, fallback_source=fallback)
        sections.extend(
            _finish(_require_text(drafts, str(file)), file_source, taken.setdefault(file_source, set()))
        )
    return sections


# --- files -------------------------------------------------------------------------------


def _suffix_list() -> str:
    return ", ".join(sorted(_SUPPORTED_SUFFIXES))


def _supported_files(root: Path) -> list[Path]:
    found = [
        file
        for file in root.rglob("*")
        if file.suffix.lower() in _SUPPORTED_SUFFIXES
        and not any(part.startswith(".") for part in file.relative_to(root).parts)
        and file.is_file()
    ]
    # Sorting by path components (not the joined string) keeps a folder's files together.
    return sorted(found, key=lambda file: file.relative_to(root).parts)


def _load_file(
    file: Path, *, source: str | None, kind: str | None, fallback_source: str
) -> tuple[str, list[_Draft]]:
    suffix = file.suffix.lower()
    origin = str(file)
    if suffix in _PDF_SUFFIXES:
        return source or fallback_source, _parse_pdf(file, kind=kind or _DEFAULT_KIND)
    text = _read_text(file)
    if suffix in _TEXT_SUFFIXES:
        return source or fallback_source, _parse_text(text, kind=kind or _DEFAULT_KIND, origin=origin)
    front_matter, drafts = _parse_markdown(text, kind=kind, origin=origin)
    declared = front_matter.get("source")
    if source is None and declared is not None and declared[0]:
        # Front matter is hand-written, so normalise it rather than reject "Starter Rules".
        return slugify(declared[0]), drafts
    return source or fallback_source, drafts


def _read_text(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise IngestError(f"{file}: cannot read the file ({exc.strerror or exc})") from exc
    if b"\x00" in data:
        # A NUL byte never occurs in UTF-8 prose; this is a binary file with a text suffix.
        raise IngestError(f"{file}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{file}: is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


# --- validation --------------------------------------------------------------------------


def _check_source(source: str, origin: str) -> None:
    if len(source) > _SLUG_MAX or not _SOURCE_RE.fullmatch(source):
        raise IngestError(
            f"{origin}: source {source!r} must be a slug of lowercase letters, digits and hyphens"
            f" (for example {slugify(source)!r})"
        )


def _check_kind(value: str, origin: str, line: int | None = None) -> str:
    kind = value.strip().lower()
    if kind not in KINDS:
        where = origin if line is None else f"{origin}, line {line}"
        raise IngestError(f"{where}: unknown kind {value.strip()!r}; allowed kinds: {', '.join(KINDS)}")
    return kind


def _require_text(drafts: list[_Draft], origin: str) -> list[_Draft]:
    if not drafts:
        raise IngestError(f"{origin}: the document is empty (no text to index)")
    return drafts


# --- shared helpers ----------------------------------------------------------------------


def _normalize_newlines(text: str) -> list[str]:
    # split("\n") rather than splitlines(): the latter also breaks at form feeds and other
    # separators that are content, which would shift the line numbers in error messages.
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _clean_title(text: str) -> str:
    return " ".join(text.split())


def _origin_stem(origin: str) -> str:
    stem = PurePath(origin).stem
    # Pseudo-origins such as "<text>" make a better title without their brackets.
    if len(stem) > 2 and stem.startswith("<") and stem.endswith(">"):
        stem = stem[1:-1]
    return stem or "document"


def _finish(drafts: Sequence[_Draft], source: str, taken: set[str]) -> list[Section]:
    """Split over-long bodies, then give every draft a slug not yet in ``taken``."""
    sections: list[Section] = []
    for draft in drafts:
        for part in _split_long(draft):
            slug = _unique_slug(slugify(part.title), taken)
            sections.append(
                Section(
                    source=source,
                    slug=slug,
                    title=part.title,
                    kind=part.kind,
                    path=_PATH_SEP.join(part.trail),
                    body=part.body,
                )
            )
    return sections


def _unique_slug(base: str, taken: set[str]) -> str:
    slug = base
    counter = 2
    while slug in taken:
        suffix = f"-{counter}"
        # Shorten the base, not the suffix, so the result stays within the 80-char limit.
        slug = base[: _SLUG_MAX - len(suffix)].rstrip("-") + suffix
        counter += 1
    taken.add(slug)
    return slug


def _split_long(draft: _Draft) -> list[_Draft]:
    if len(draft.body) <= _MAX_BODY_CHARS:
        return [draft]
    chunks = _chunk(draft.body, _MAX_BODY_CHARS)
    parts: list[_Draft] = []
    for number, chunk in enumerate(chunks, start=1):
        title = f"{draft.title} (part {number})"
        parts.append(_Draft(title=title, kind=draft.kind, trail=(*draft.trail[:-1], title), body=chunk))
    return parts


def _chunk(text: str, limit: int, level: int = 0) -> list[str]:
    """Cut ``text`` into stripped pieces of at most ``limit`` chars at the coarsest boundary."""
    if len(text) <= limit:
        stripped = text.strip()
        return [stripped] if stripped else []
    if level >= len(_CHUNK_LEVELS):
        # One unbroken run longer than the limit: nothing better than a hard cut remains.
        return [text[start : start + limit] for start in range(0, len(text), limit)]
    pattern, joiner = _CHUNK_LEVELS[level]
    chunks: list[str] = []
    current = ""
    for piece in pattern.split(text):
        if len(piece) > limit:
            chunks.extend(_chunk(current, limit))
            current = ""
            chunks.extend(_chunk(piece, limit, level + 1))
            continue
        candidate = f"{current}{joiner}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.extend(_chunk(current, limit))
            current = piece
    chunks.extend(_chunk(current, limit))
    return chunks


# --- Markdown ----------------------------------------------------------------------------


def _parse_front_matter(lines: list[str]) -> tuple[dict[str, tuple[str, int]], int]:
    """Front matter as ``{key: (value, line number)}`` and the index of the first body line."""
    if not lines or lines[0].rstrip() != "---":
        return {}, 0
    values: dict[str, tuple[str, int]] = {}
    for index in range(1, len(lines)):
        raw = lines[index].strip()
        if raw == "---":
            return values, index + 1
        if not raw:
            continue
        match = _FRONT_MATTER_LINE.fullmatch(raw)
        if match is None:
            # Not key/value pairs: the leading "---" was a thematic break, not front matter.
            return {}, 0
        value = match[2].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[match[1].lower()] = (value, index + 1)
    # An unclosed block is a thematic break followed by ordinary text.
    return {}, 0


def _markdown_headings(lines: list[str], start: int) -> list[tuple[int, int, str]]:
    """``(line index, level, title)`` of every ATX heading outside fenced code blocks."""
    headings: list[tuple[int, int, str]] = []
    fence: str | None = None
    for index in range(start, len(lines)):
        line = lines[index]
        if fence is not None:
            close = _FENCE_CLOSE.fullmatch(line)
            # A fence closes only with the same character, at least as long as it opened.
            if close is not None and close[1][0] == fence[0] and len(close[1]) >= len(fence):
                fence = None
            continue
        opening = _FENCE_OPEN.fullmatch(line)
        # A backtick fence's info string may not contain backticks (that is inline code).
        if opening is not None and not (opening[1][0] == "`" and "`" in opening[2]):
            fence = opening[1]
            continue
        heading = _ATX_HEADING.fullmatch(line)
        if heading is None:
            continue
        title = _clean_title(_ATX_CLOSING.sub("", heading[2] or ""))
        # An empty heading ("#" alone) carries no title to file a section under; keep it as text.
        if title:
            headings.append((index, len(heading[1]), title))
    return headings


def _parse_markdown(
    text: str, *, kind: str | None, origin: str
) -> tuple[dict[str, tuple[str, int]], list[_Draft]]:
    lines = _normalize_newlines(text)
    front_matter, start = _parse_front_matter(lines)
    document_kind = _DEFAULT_KIND
    if "kind" in front_matter:
        value, line = front_matter["kind"]
        document_kind = _check_kind(value, origin, line)
    headings = _markdown_headings(lines, start)

    drafts: list[_Draft] = []
    first_heading = headings[0][0] if headings else len(lines)
    preamble = "\n".join(lines[start:first_heading]).strip()
    if preamble:
        declared_title = front_matter.get("title", ("", 0))[0].strip()
        title = _clean_title(declared_title) or _origin_stem(origin)
        drafts.append(_Draft(title=title, kind=kind or document_kind, trail=(title,), body=preamble))

    # The open headings above the current one: (level, title, own kind marker or None).
    stack: list[tuple[int, str, str | None]] = []
    for position, (index, level, title) in enumerate(headings):
        end = headings[position + 1][0] if position + 1 < len(headings) else len(lines)
        body_lines = lines[index + 1 : end]
        marker = _take_kind_marker(body_lines, first_line=index + 2, origin=origin)
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title, marker))
        body = "\n".join(body_lines).strip()
        if not body:
            continue
        inherited = next((mark for _, _, mark in reversed(stack) if mark is not None), None)
        drafts.append(
            _Draft(
                title=title,
                kind=kind or inherited or document_kind,
                trail=tuple(heading_title for _, heading_title, _ in stack),
                body=body,
            )
        )
    return front_matter, drafts


def _take_kind_marker(body_lines: list[str], *, first_line: int, origin: str) -> str | None:
    """Remove a ``Kind: ...`` line leading ``body_lines`` (in place) and return its kind."""
    for offset, line in enumerate(body_lines):
        if not line.strip():
            continue
        match = _KIND_MARKER.fullmatch(line)
        if match is None:
            return None
        # Validated even when the caller forces a kind: a typo in the file is still a typo.
        kind = _check_kind(match[1], origin, first_line + offset)
        del body_lines[offset]
        return kind
    return None


# --- plain text --------------------------------------------------------------------------


def _is_caps_heading(line: str) -> bool:
    letters = sum(1 for char in line if char.isalpha())
    # upper() == line alone would accept "123"; requiring cased letters rules that out.
    return len(line) <= _CAPS_HEADING_MAX and letters >= 2 and line == line.upper() and line != line.lower()


def _text_headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """``(first line, line after the heading, title)`` of setext and ALL-CAPS headings."""
    headings: list[tuple[int, int, str]] = []
    # A heading must start a block; otherwise the last line of a paragraph followed by a
    # "-----" rule would be mistaken for one.
    after_break = True
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped:
            after_break = True
            index += 1
            continue
        if after_break and not _SETEXT_UNDERLINE.fullmatch(stripped):
            if index + 1 < len(lines) and _SETEXT_UNDERLINE.fullmatch(lines[index + 1]):
                headings.append((index, index + 2, _clean_title(stripped)))
                index += 2
                continue
            next_blank = index + 1 >= len(lines) or not lines[index + 1].strip()
            if next_blank and _is_caps_heading(stripped):
                headings.append((index, index + 1, _clean_title(stripped)))
                index += 1
                continue
        after_break = False
        index += 1
    return headings


def _parse_text(text: str, *, kind: str, origin: str) -> list[_Draft]:
    lines = _normalize_newlines(text)
    stem = _origin_stem(origin)
    headings = _text_headings(lines)
    if not headings:
        return _paragraph_parts("\n".join(lines), kind=kind, stem=stem)

    drafts: list[_Draft] = []
    preamble = "\n".join(lines[: headings[0][0]]).strip()
    if preamble:
        drafts.append(_Draft(title=stem, kind=kind, trail=(stem,), body=preamble))
    for position, (_, body_start, title) in enumerate(headings):
        end = headings[position + 1][0] if position + 1 < len(headings) else len(lines)
        body = "\n".join(lines[body_start:end]).strip()
        if body:
            drafts.append(_Draft(title=title, kind=kind, trail=(title,), body=body))
    return drafts


def _paragraph_parts(text: str, *, kind: str, stem: str) -> list[_Draft]:
    paragraphs = [paragraph.strip() for paragraph in _BLANK_LINE_SPLIT.split(text) if paragraph.strip()]
    groups: list[list[str]] = []
    size = 0
    for paragraph in paragraphs:
        # Close a group once adding the next paragraph would overshoot; a lone paragraph
        # longer than the target still forms one group (never cut mid-paragraph here).
        if groups and size + 2 + len(paragraph) <= _TEXT_PART_CHARS:
            groups[-1].append(paragraph)
            size += 2 + len(paragraph)
        else:
            groups.append([paragraph])
            size = len(paragraph)
    drafts: list[_Draft] = []
    for number, group in enumerate(groups, start=1):
        title = f"{stem} (part {number})"
        drafts.append(_Draft(title=title, kind=kind, trail=(title,), body="\n\n".join(group)))
    return drafts


# --- PDF ---------------------------------------------------------------------------------


def _parse_pdf(path: Path, *, kind: str) -> list[_Draft]:
    texts, entries = _read_pdf(path)
    stem = path.stem
    if entries:
        drafts = _outline_sections(texts, entries, kind=kind, stem=stem)
        if drafts:
            return drafts
    drafts = []
    for number, page_text in enumerate(texts, start=1):
        if page_text:
            title = f"{stem}, page {number}"
            drafts.append(_Draft(title=title, kind=kind, trail=(title,), body=page_text))
    if not drafts:
        raise IngestError(f"{path}: the PDF has no extractable text (a scanned PDF needs OCR first)")
    return drafts


def _read_pdf(path: Path) -> tuple[list[str], list[tuple[tuple[str, ...], int]]]:
    """Every page's text and the outline entries, with all pypdf failures as IngestError."""
    # Imported here because pypdf takes about half a second to import and most server starts
    # (the Markdown compendium included) never read a PDF.
    from pypdf import PasswordType, PdfReader  # noqa: PLC0415

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    # Only pypdf calls sit in this try, so a bug in the sectioning code is not disguised as
    # a damaged file.
    try:
        reader = PdfReader(BytesIO(data))
        # Many PDFs are "encrypted" with an empty user password just to set permissions.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise IngestError(f"{path}: the PDF is encrypted with a password; decrypt it first")
        texts = ["\n".join(_normalize_newlines(page.extract_text() or "")).strip() for page in reader.pages]
        entries = _outline_entries(reader, len(texts))
    except IngestError:
        raise
    except Exception as exc:
        # pypdf signals damage with many exception types (PdfReadError, KeyError, ValueError,
        # RecursionError on cyclic objects...); callers need exactly one.
        raise IngestError(f"{path}: not a readable PDF ({type(exc).__name__}: {exc})") from exc
    return texts, entries


def _outline_entries(reader: PdfReader, page_count: int) -> list[tuple[tuple[str, ...], int]]:
    """``(trail, page index)`` of every outline entry that points at a page, in page order."""
    entries = [
        (trail, page)
        for trail, page in _walk_outline(reader, reader.outline, ())
        if page is not None and 0 <= page < page_count
    ]
    # Stable sort: entries on the same page keep their outline order.
    return sorted(entries, key=lambda entry: entry[1])


def _walk_outline(
    reader: PdfReader, outline: Sequence[object], trail: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], int | None]]:
    from pypdf.generic import Destination  # noqa: PLC0415

    # pypdf represents children as a list right after their parent entry.
    last: tuple[str, ...] | None = None
    for entry in outline:
        if isinstance(entry, Destination):
            title = _clean_title(str(entry.title or "")) or "Untitled"
            last = (*trail, title)
            yield last, reader.get_destination_page_number(entry)
        elif isinstance(entry, list):
            yield from _walk_outline(reader, entry, last if last is not None else trail)


def _outline_sections(
    texts: list[str], entries: list[tuple[tuple[str, ...], int]], *, kind: str, stem: str
) -> list[_Draft]:
    """Cut the text between consecutive outline entries.

    Pages are too coarse when several entries share one (a page of short spells): each
    entry's title is looked up in its page's text, after the previous entry's, and the cut
    made there. If the title is not found the entry starts at the top of its page (or right
    after the previous title on a shared page), which is the page-granular rule.
    """
    # Positions are (page index, offset in that page's text).
    starts: list[tuple[int, int]] = []
    body_starts: list[tuple[int, int]] = []
    cursor = (0, 0)
    for trail, page in entries:
        offset = cursor[1] if cursor[0] == page else 0
        match = _find_title(trail[-1], texts[page], offset)
        if match is None:
            starts.append((page, offset))
            body_starts.append((page, offset))
        else:
            starts.append((page, match[0]))
            body_starts.append((page, match[1]))
        cursor = body_starts[-1]

    drafts: list[_Draft] = []
    document_end = (len(texts) - 1, len(texts[-1]))
    preamble = _text_between(texts, (0, 0), starts[0])
    if preamble:
        drafts.append(_Draft(title=stem, kind=kind, trail=(stem,), body=preamble))
    for position, (trail, _) in enumerate(entries):
        end = starts[position + 1] if position + 1 < len(entries) else document_end
        body = _text_between(texts, body_starts[position], end)
        if body:
            drafts.append(_Draft(title=trail[-1], kind=kind, trail=trail, body=body))
    return drafts


def _find_title(title: str, text: str, offset: int) -> tuple[int, int] | None:
    words = title.split()
    if not words:
        return None
    # Extracted text re-wraps and re-spaces freely, so match words with any whitespace between.
    # The lookarounds stop "Ice" from matching inside "Price".
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(word) for word in words) + r"(?!\w)"
    match = re.compile(pattern, re.IGNORECASE).search(text, offset)
    return None if match is None else (match.start(), match.end())


def _text_between(texts: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (start_page, start_offset), (end_page, end_offset) = start, end
    if start_page == end_page:
        return texts[start_page][start_offset:end_offset].strip()
    pieces = [
        texts[start_page][start_offset:],
        *texts[start_page + 1 : end_page],
        texts[end_page][:end_offset],
    ]
    return "\n".join(piece.strip() for piece in pieces if piece.strip())
