"""Tests for ``ttrpg_mcp.server.ingest``: documents in, searchable sections out."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TypeAlias

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ContentStream, DecodedStreamObject, DictionaryObject, IndirectObject, NameObject

from ttrpg_mcp.server.ingest import (
    COMPENDIUM_DIR,
    KINDS,
    IngestError,
    Section,
    load_path,
    sections_from_markdown,
    sections_from_pdf,
    sections_from_text,
    slugify,
)

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# An outline entry for the PDF helper: (title, page index, children).
_Outline: TypeAlias = list[tuple[str, int, "_Outline"]]


# --- helpers -----------------------------------------------------------------------------


def _md(text: str, **options: str) -> list[Section]:
    return sections_from_markdown(text, source="test", origin="notes.md", **options)


def _by_title(sections: list[Section]) -> dict[str, Section]:
    return {section.title: section for section in sections}


def _write_pdf(path: Path, pages: list[list[str]], outline: _Outline | None = None) -> Path:
    """A real PDF whose pages draw ``pages``' lines in Helvetica, with optional bookmarks."""
    writer = PdfWriter()
    for lines in pages:
        page = writer.add_blank_page(width=612, height=792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        operators = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            operators.append(f"({escaped}) Tj T*")
        operators.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(operators).encode("latin-1"))
        page.replace_contents(ContentStream(stream, writer))

    def add(entries: _Outline, parent: IndirectObject | None = None) -> None:
        for title, page_index, children in entries:
            item = writer.add_outline_item(title=title, page_number=page_index, parent=parent)
            add(children, item)

    add(outline or [])
    with path.open("wb") as handle:
        writer.write(handle)
    return path


# --- slugify -----------------------------------------------------------------------------


def test_slugify_lowercases_strips_accents_and_hyphenates() -> None:
    """Accents fold to ASCII and runs of other characters become single hyphens."""
    assert slugify("Fireball") == "fireball"
    assert slugify("  Éclair à la Crème!! ") == "eclair-a-la-creme"
    assert slugify("Spells > Evocation > Fireball") == "spells-evocation-fireball"
    assert slugify("Wayfinder's Compass") == slugify("Wayfinder\u2019s Compass") == "wayfinders-compass"


def test_slugify_is_never_empty_and_at_most_80_chars() -> None:
    """Nothing left means "section"; long text is cut without a trailing hyphen."""
    assert slugify("") == "section"
    assert slugify("!!! ??? 漢字") == "section"
    long = slugify("word " * 40)
    assert len(long) <= 80
    assert not long.endswith("-")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_slugify_always_returns_a_valid_slug(text: str) -> None:
    """Any input gives a non-empty [a-z0-9-] slug of at most 80 characters."""
    slug = slugify(text)
    assert 0 < len(slug) <= 80
    assert _SLUG.fullmatch(slug) or slug == "section"


# --- Markdown ----------------------------------------------------------------------------


def test_markdown_sections_follow_headings() -> None:
    """Each heading starts a section running to the next heading of any level."""
    sections = _md(
        "# Spells\n\nIntro to spells.\n\n## Evocation\n\n### Fireball\n\nA ball of fire.\n\n"
        "### Frost Ray\nCold.\n\n# Monsters\n\n#### Goblin ###\nSmall and mean.\n"
    )
    assert [(s.title, s.path, s.body) for s in sections] == [
        ("Spells", "Spells", "Intro to spells."),
        ("Fireball", "Spells > Evocation > Fireball", "A ball of fire."),
        ("Frost Ray", "Spells > Evocation > Frost Ray", "Cold."),
        ("Goblin", "Monsters > Goblin", "Small and mean."),
    ]
    assert [s.slug for s in sections] == ["spells", "fireball", "frost-ray", "goblin"]
    assert {s.source for s in sections} == {"test"}
    assert {s.kind for s in sections} == {"lore"}


def test_markdown_heading_without_body_produces_no_section() -> None:
    """A heading that only parents subsections is in the path but not a section."""
    sections = _md("# Rules\n\n## Combat\n   \n### Initiative\nRoll a d20.\n")
    assert [s.title for s in sections] == ["Initiative"]
    assert sections[0].path == "Rules > Combat > Initiative"


def test_markdown_text_before_first_heading_is_titled_from_the_file() -> None:
    """A preamble becomes a section named after the origin's stem, or the front matter title."""
    sections = _md("Welcome, travellers.\n\n# Town\nA town.\n")
    preamble = sections[0]
    assert (preamble.title, preamble.path, preamble.body) == ("notes", "notes", "Welcome, travellers.")
    titled = _md("---\ntitle: The Book\n---\nWelcome.\n# Town\nA town.\n")
    assert titled[0].title == "The Book"
    assert sections_from_markdown("Just text.", source="test")[0].title == "text"


def test_markdown_deeper_headings_and_non_headings_stay_in_the_body() -> None:
    """Level 5+ headings, '#hashtags' and empty '#' lines do not start sections."""
    sections = _md("## Goblin\nSmall.\n##### Actions\nStab.\n#hashtag\n#\n")
    assert len(sections) == 1
    assert sections[0].body == "Small.\n##### Actions\nStab.\n#hashtag\n#"


def test_markdown_ignores_headings_inside_fenced_code_blocks() -> None:
    """'#' lines inside ``` or ~~~ fences are code, including longer and nested-looking fences."""
    text = (
        "# Script\n```python\n# a comment\n~~~\n# still code\n```\nafter\n"
        "~~~~\n# tilde code\n~~~\n# still tilde code\n~~~~\n# Next\nbody\n"
    )
    sections = _md(text)
    assert [s.title for s in sections] == ["Script", "Next"]
    assert "# a comment" in sections[0].body
    assert "# still tilde code" in sections[0].body


def test_markdown_unclosed_fence_runs_to_the_end() -> None:
    """An unclosed fence swallows the rest of the document, as in CommonMark."""
    sections = _md("# Code\n```\n# not a heading\n")
    assert [s.title for s in sections] == ["Code"]


def test_front_matter_is_parsed_and_removed_from_the_body() -> None:
    """Front matter keys set the default kind and never appear as text."""
    sections = _md("---\nsource: starter\ntitle: 'Starter'\nkind: Spell\n---\n# Fireball\nBoom.\n")
    assert [(s.title, s.kind, s.body) for s in sections] == [("Fireball", "spell", "Boom.")]


def test_a_leading_rule_without_key_value_lines_is_not_front_matter() -> None:
    """'---' around ordinary text, or an unclosed '---', is a thematic break, kept as text."""
    sections = _md("---\n# Heading\n---\nbody\n")
    assert [(s.title, s.body) for s in sections] == [("notes", "---"), ("Heading", "---\nbody")]
    unclosed = _md("---\nkind: spell\n# Heading\nbody\n")
    assert unclosed[0].title == "notes"
    assert unclosed[1].kind == "lore"


def test_kind_markers_are_removed_and_inherited_by_subsections() -> None:
    """A 'Kind:' line under a heading sets that section's kind and its subsections'."""
    text = (
        "---\nkind: rule\n---\n"
        "# Magic\nKind: SPELL\n\n## Fireball\nBoom.\n\n## Casting\n\nkind : rule\n\nHow to cast.\n\n"
        "# Bestiary\n\n## Goblin\nKIND: monster\nSmall.\n\n### Goblin Boss\nBigger.\n\n"
        "# Basics\nRoll dice.\n"
    )
    kinds = {s.title: s.kind for s in _md(text)}
    assert kinds == {
        "Fireball": "spell",
        "Casting": "rule",
        "Goblin": "monster",
        "Goblin Boss": "monster",
        "Basics": "rule",
    }
    bodies = {s.title: s.body for s in _md(text)}
    assert bodies["Casting"] == "How to cast."
    assert bodies["Goblin"] == "Small."


def test_kind_marker_only_counts_as_the_first_line_of_a_section() -> None:
    """A 'Kind:' line further down is ordinary text."""
    sections = _md("# Elf\nA tall folk.\nKind: mostly.\n")
    assert sections[0].kind == "lore"
    assert sections[0].body.endswith("Kind: mostly.")


def test_explicit_kind_overrides_markers_and_front_matter() -> None:
    """The kind argument wins over everything in the file."""
    text = "---\nkind: lore\n---\nIntro.\n# Magic\nKind: spell\nBoom.\n"
    sections = _md(text, kind="item")
    assert {s.kind for s in sections} == {"item"}
    assert sections[1].body == "Boom."


def test_unknown_kind_marker_names_file_line_and_allowed_kinds() -> None:
    """A misspelt marker is an error pointing at its line."""
    with pytest.raises(IngestError, match=r"notes\.md, line 4: unknown kind 'feat'") as caught:
        _md("# A\nText.\n# B\nKind: feat\nText.\n")
    assert "rule, spell, monster, item, lore" in str(caught.value)


def test_unknown_front_matter_or_argument_kind_is_an_error() -> None:
    """Front matter and the kind argument are validated too."""
    with pytest.raises(IngestError, match=r"notes\.md, line 2: unknown kind 'feats'"):
        _md("---\nkind: feats\n---\n# A\nText.\n")
    with pytest.raises(IngestError, match="unknown kind 'weapon'"):
        _md("# A\nText.\n", kind="weapon")
    with pytest.raises(IngestError, match="unknown kind"):
        sections_from_text("Text.", source="test", kind="nope")


def test_duplicate_titles_get_numbered_slugs() -> None:
    """A second 'Fireball' becomes fireball-2, skipping slugs already taken."""
    sections = _md("# Fireball\na\n# Fireball 2\nb\n# Fireball\nc\n# FIREBALL!\nd\n")
    assert [s.slug for s in sections] == ["fireball", "fireball-2", "fireball-3", "fireball-4"]


def test_numbered_slugs_stay_within_80_chars() -> None:
    """The base is shortened to make room for the counter."""
    title = "Very " * 30
    sections = _md(f"# {title}\na\n# {title}\nb\n")
    assert len(sections[1].slug) <= 80
    assert sections[1].slug.endswith("-2")


def test_empty_documents_are_errors() -> None:
    """A document with nothing to index names the file."""
    with pytest.raises(IngestError, match=r"notes\.md: the document is empty"):
        _md("---\nkind: rule\n---\n\n# Heading\n\n## Another\n")
    with pytest.raises(IngestError, match="empty"):
        sections_from_text(" \n\n\t\n", source="test", origin="blank.txt")


def test_invalid_source_is_rejected() -> None:
    """Sources must already be slugs."""
    with pytest.raises(IngestError, match="source 'Starter Rules'"):
        sections_from_markdown("# A\nb", source="Starter Rules")


def test_windows_newlines_and_bom_are_handled() -> None:
    """CRLF line ends and a UTF-8 BOM do not disturb front matter or headings."""
    sections = _md("\ufeff---\r\nkind: item\r\n---\r\n# Rope\r\nFifty feet.\r\n")
    assert [(s.title, s.kind, s.body) for s in sections] == [("Rope", "item", "Fifty feet.")]


_MARKDOWNISH = st.text(alphabet=st.sampled_from(list("#`~-=: \n\r\tkindKINDspellruleabcé'>*")), max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), _MARKDOWNISH))
def test_markdown_parsing_only_ever_raises_ingest_error(text: str) -> None:
    """Arbitrary input yields well-formed sections or an IngestError, nothing else."""
    try:
        sections = sections_from_markdown(text, source="fuzz")
    except IngestError:
        return
    assert sections
    slugs = [s.slug for s in sections]
    assert len(set(slugs)) == len(slugs)
    for section in sections:
        assert section.kind in KINDS
        assert section.body
        assert section.body == section.body.strip()
        assert _SLUG.fullmatch(section.slug)
        assert len(section.slug) <= 80


# --- plain text --------------------------------------------------------------------------


def test_text_setext_headings_split_sections() -> None:
    """A line underlined with === or --- is a heading."""
    text = "Preface words.\n\nCombat\n======\nRoll initiative.\n\nMagic\n-----\nCast spells.\n"
    sections = sections_from_text(text, source="test", origin="book.txt")
    assert [(s.title, s.body) for s in sections] == [
        ("book", "Preface words."),
        ("Combat", "Roll initiative."),
        ("Magic", "Cast spells."),
    ]


def test_text_all_caps_lines_between_blank_lines_are_headings() -> None:
    """Short ALL-CAPS lines surrounded by blank lines are headings; others are text."""
    text = (
        "CHAPTER ONE: THE ROAD\n\nThey walked.\nNOT A HEADING\nStill walking.\n\n"
        "2024\n\nSTOP\n\nThe end.\n\n" + "LOUD " * 20 + "\n\nafter\n"
    )
    sections = sections_from_text(text, source="test", origin="story.txt")
    assert [s.title for s in sections] == ["CHAPTER ONE: THE ROAD", "STOP"]
    assert "NOT A HEADING" in sections[0].body
    assert "2024" in sections[0].body
    assert "LOUD LOUD" in sections[1].body


def test_text_underline_after_a_paragraph_is_not_a_heading() -> None:
    """Only a single line starting a block can be a setext heading."""
    text = "Line one of a paragraph\nline two\n---------\nmore text\n"
    sections = sections_from_text(text, source="test", origin="memo.txt")
    assert [s.title for s in sections] == ["memo (part 1)"]


def test_text_without_headings_is_grouped_into_parts() -> None:
    """Paragraphs are packed into parts of roughly 2,000 characters, never split."""
    paragraphs = [f"Paragraph {n} " + "word " * 90 for n in range(12)]  # ~460 chars each
    sections = sections_from_text("\n\n".join(paragraphs), source="test", origin="notes.txt")
    assert [s.title for s in sections] == ["notes (part 1)", "notes (part 2)", "notes (part 3)"]
    assert [s.slug for s in sections] == ["notes-part-1", "notes-part-2", "notes-part-3"]
    assert all(len(s.body) <= 2_000 for s in sections)
    rejoined = "\n\n".join(s.body for s in sections)
    assert rejoined == "\n\n".join(p.strip() for p in paragraphs)


def test_text_single_long_paragraph_stays_whole() -> None:
    """A paragraph longer than the target is one part of its own."""
    long = "x" * 3_000
    sections = sections_from_text(f"short\n\n{long}\n\nshort again", source="test")
    assert [len(s.body) for s in sections] == [5, 3_000, 11]


def test_huge_bodies_are_split_into_parts() -> None:
    """Bodies over 50,000 characters become '(part N)' sections at paragraph boundaries."""
    paragraph = "The goblin king's hall is vast. " * 30  # ~960 chars
    body = "\n\n".join(f"{n}: {paragraph}".strip() for n in range(130))
    sections = _md(f"# Spells\n## Huge Hall\n{body}\n## After\nsmall\n")
    titles = [s.title for s in sections]
    assert titles[:-1] == [f"Huge Hall (part {n})" for n in range(1, len(titles))]
    assert len(titles) - 1 == 3
    assert titles[-1] == "After"
    assert all(len(s.body) <= 50_000 for s in sections)
    assert sections[1].path == "Spells > Huge Hall (part 2)"
    assert [s.slug for s in sections[:3]] == ["huge-hall-part-1", "huge-hall-part-2", "huge-hall-part-3"]
    assert "\n\n".join(s.body for s in sections[:-1]) == body


def test_huge_unbroken_text_is_cut_anyway() -> None:
    """Without any whitespace to split at, the body is cut hard at the limit."""
    sections = sections_from_text("BLOB\n\n" + "z" * 120_001, source="test")
    assert [len(s.body) for s in sections] == [50_000, 50_000, 20_001]
    assert [s.title for s in sections] == ["BLOB (part 1)", "BLOB (part 2)", "BLOB (part 3)"]


# --- load_path ---------------------------------------------------------------------------


def test_load_path_walks_a_directory_in_sorted_order(tmp_path: Path) -> None:
    """Directories load recursively, sorted, skipping hidden and unsupported files."""
    root = tmp_path / "My Campaign"
    (root / "b_dir").mkdir(parents=True)
    (root / ".hidden_dir").mkdir()
    (root / "b_dir" / "inner.md").write_text("# Inner\ninner text\n", encoding="utf-8")
    (root / "a.md").write_text("# Alpha\nalpha text\n", encoding="utf-8")
    (root / "c.txt").write_text("Gamma\n=====\ngamma text\n", encoding="utf-8")
    (root / "d.MARKDOWN").write_text("# Delta\ndelta text\n", encoding="utf-8")
    (root / ".secret.md").write_text("# Secret\nhidden\n", encoding="utf-8")
    (root / ".hidden_dir" / "x.md").write_text("# X\nhidden\n", encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / "notes.rst").write_text("Title\n=====\n", encoding="utf-8")

    sections = load_path(root)
    assert [s.title for s in sections] == ["Alpha", "Inner", "Gamma", "Delta"]
    assert {s.source for s in sections} == {"my-campaign"}


def test_load_path_source_comes_from_argument_front_matter_or_name(tmp_path: Path) -> None:
    """An explicit source wins, then front matter 'source' (slugified), then the file stem."""
    declared = tmp_path / "house rules.md"
    declared.write_text("---\nsource: Homebrew Rules\n---\n# Flanking\nAdvantage.\n", encoding="utf-8")
    plain = tmp_path / "Session Notes.md"
    plain.write_text("# Day One\nWe met.\n", encoding="utf-8")

    assert load_path(declared)[0].source == "homebrew-rules"
    assert load_path(plain)[0].source == "session-notes"
    assert load_path(declared, source="mine")[0].source == "mine"
    assert {s.source for s in load_path(tmp_path)} == {"homebrew-rules", slugify(tmp_path.name)}


def test_load_path_keeps_slugs_unique_within_a_source_across_files(tmp_path: Path) -> None:
    """The same heading in two files of one source gets distinct slugs."""
    (tmp_path / "one.md").write_text("# Goblin\nfirst\n", encoding="utf-8")
    (tmp_path / "two.md").write_text("# Goblin\nsecond\n", encoding="utf-8")
    (tmp_path / "three.md").write_text("---\nsource: other\n---\n# Goblin\nthird\n", encoding="utf-8")
    sections = load_path(tmp_path)
    assert [(s.source, s.slug, s.body) for s in sections] == [
        (slugify(tmp_path.name), "goblin", "first"),
        ("other", "goblin", "third"),
        (slugify(tmp_path.name), "goblin-2", "second"),
    ]


def test_load_path_passes_kind_through(tmp_path: Path) -> None:
    """The kind argument applies to every file loaded."""
    (tmp_path / "a.md").write_text("# A\nKind: spell\ntext\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("plain text\n", encoding="utf-8")
    assert {s.kind for s in load_path(tmp_path, kind="item")} == {"item"}
    assert [s.kind for s in load_path(tmp_path)] == ["spell", "lore"]


def test_load_path_rejects_unsupported_suffixes(tmp_path: Path) -> None:
    """A single file of another type is an error naming the file."""
    path = tmp_path / "rules.docx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(IngestError, match=r"rules\.docx: unsupported file type '\.docx'"):
        load_path(path)


def test_load_path_reports_missing_and_empty_inputs(tmp_path: Path) -> None:
    """Missing paths, directories without documents and empty files are errors."""
    with pytest.raises(IngestError, match="no such file or directory"):
        load_path(tmp_path / "nope.md")
    (tmp_path / "readme.rst").write_text("x", encoding="utf-8")
    with pytest.raises(IngestError, match=r"no .* files to load"):
        load_path(tmp_path)
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"empty\.md: the document is empty"):
        load_path(tmp_path)


def test_load_path_rejects_undecodable_and_binary_text(tmp_path: Path) -> None:
    """Files that are not UTF-8 text raise IngestError rather than UnicodeDecodeError."""
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Caf\u00e9 cr\u00e8me".encode("latin-1"))
    with pytest.raises(IngestError, match=r"latin\.txt: is not UTF-8"):
        load_path(latin)
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"# Title\x00\x01\x02")
    with pytest.raises(IngestError, match="binary"):
        load_path(binary)


def test_load_path_rejects_an_invalid_source(tmp_path: Path) -> None:
    """An explicit source must be a slug."""
    (tmp_path / "a.md").write_text("# A\ntext\n", encoding="utf-8")
    with pytest.raises(IngestError, match="must be a slug"):
        load_path(tmp_path, source="Not A Slug")


# --- PDF ---------------------------------------------------------------------------------


def test_pdf_helper_writes_text_pypdf_can_extract(tmp_path: Path) -> None:
    """The generated PDFs really contain the text (so the PDF tests test something)."""
    path = _write_pdf(tmp_path / "check.pdf", [["Hello (world)", "Second line"]], [("Top", 0, [])])
    reader = PdfReader(path)
    text = reader.pages[0].extract_text()
    assert "Hello (world)" in text
    assert "Second line" in text
    assert len(reader.outline) == 1


def test_pdf_without_outline_gives_one_section_per_page(tmp_path: Path) -> None:
    """Each page with text is a section; blank pages are skipped."""
    path = _write_pdf(tmp_path / "Field Guide.pdf", [["The marsh is wet."], [], ["Goblins live here."]])
    sections = sections_from_pdf(path, source="guide")
    assert [(s.title, s.slug, s.kind) for s in sections] == [
        ("Field Guide, page 1", "field-guide-page-1", "lore"),
        ("Field Guide, page 3", "field-guide-page-3", "lore"),
    ]
    assert sections[0].body == "The marsh is wet."
    assert sections[1].body == "Goblins live here."


def test_pdf_outline_entries_become_sections(tmp_path: Path) -> None:
    """Bookmarks give sections spanning to the next bookmark, with nested paths."""
    pages = [
        ["Player Handbook", "Printed in the marsh."],
        ["Spells", "Fireball", "A ball of fire.", "Frost Ray", "A ray of cold."],
        ["More about frost rays."],
        ["Monsters", "Goblin", "Small and mean."],
        ["Troll", "Large and hungry."],
    ]
    outline: _Outline = [
        (
            "Spells",
            1,
            [("Fireball", 1, []), ("Frost Ray", 1, [])],
        ),
        ("Monsters", 3, [("Goblin", 3, []), ("Troll", 4, [])]),
    ]
    path = _write_pdf(tmp_path / "handbook.pdf", pages, outline)
    sections = sections_from_pdf(path, source="handbook", kind="rule")
    assert [(s.title, s.path, s.body) for s in sections] == [
        ("handbook", "handbook", "Player Handbook\nPrinted in the marsh."),
        ("Fireball", "Spells > Fireball", "A ball of fire."),
        ("Frost Ray", "Spells > Frost Ray", "A ray of cold.\nMore about frost rays."),
        ("Goblin", "Monsters > Goblin", "Small and mean."),
        ("Troll", "Monsters > Troll", "Large and hungry."),
    ]
    assert {s.kind for s in sections} == {"rule"}


def test_pdf_outline_titles_missing_from_the_text_fall_back_to_pages(tmp_path: Path) -> None:
    """A bookmark whose title is not printed spans whole pages up to the next bookmark."""
    pages = [["alpha text"], ["beta text"], ["gamma text"]]
    path = _write_pdf(tmp_path / "book.pdf", pages, [("First", 0, []), ("Second", 2, [])])
    sections = sections_from_pdf(path, source="book")
    assert [(s.title, s.body) for s in sections] == [
        ("First", "alpha text\nbeta text"),
        ("Second", "gamma text"),
    ]


def test_load_path_reads_pdfs_by_suffix(tmp_path: Path) -> None:
    """load_path dispatches .pdf files to the PDF reader with the stem as source."""
    _write_pdf(tmp_path / "Tome.PDF", [["Page one text."]])
    sections = load_path(tmp_path / "Tome.PDF")
    assert [(s.source, s.title) for s in sections] == [("tome", "Tome, page 1")]


@pytest.mark.parametrize(
    "content",
    [b"not a pdf at all", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R", b""],
    ids=["garbage", "truncated", "empty"],
)
def test_corrupt_pdf_raises_ingest_error(tmp_path: Path, content: bytes) -> None:
    """Damaged files raise IngestError naming the file, never a pypdf exception."""
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=r"broken\.pdf"):
        sections_from_pdf(path, source="broken")


def test_truncated_real_pdf_raises_ingest_error(tmp_path: Path) -> None:
    """Half of a real PDF is reported as IngestError naming the file."""
    whole = _write_pdf(tmp_path / "whole.pdf", [["Some text here."]] * 3)
    half = tmp_path / "half.pdf"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(IngestError, match=r"half\.pdf: not a readable PDF"):
        sections_from_pdf(half, source="half")


def test_pdf_outline_titles_match_whole_words_only(tmp_path: Path) -> None:
    """A bookmark titled 'Ice' starts at the word 'Ice', not inside 'Prices'."""
    page = ["Prices rise in winter.", "Ice", "Cold and clear."]
    path = _write_pdf(tmp_path / "shop.pdf", [page], [("Ice", 0, [])])
    sections = sections_from_pdf(path, source="shop")
    assert [(s.title, s.body) for s in sections] == [
        ("shop", "Prices rise in winter."),
        ("Ice", "Cold and clear."),
    ]


def test_encrypted_pdf_raises_ingest_error(tmp_path: Path) -> None:
    """A password-protected PDF is reported, not read."""
    source = _write_pdf(tmp_path / "plain.pdf", [["Secret rules."]])
    writer = PdfWriter(clone_from=source)
    writer.encrypt("hunter2", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as handle:
        writer.write(handle)
    with pytest.raises(IngestError, match=r"locked\.pdf: the PDF is encrypted"):
        sections_from_pdf(locked, source="locked")


def test_pdf_without_text_raises_ingest_error(tmp_path: Path) -> None:
    """A PDF of blank (or scanned) pages has nothing to index."""
    path = _write_pdf(tmp_path / "scan.pdf", [[], []])
    with pytest.raises(IngestError, match="no extractable text"):
        sections_from_pdf(path, source="scan")


def test_missing_pdf_raises_ingest_error(tmp_path: Path) -> None:
    """An unreadable path is an IngestError too."""
    with pytest.raises(IngestError, match="cannot read"):
        sections_from_pdf(tmp_path / "absent.pdf", source="absent")


# --- the shipped compendium --------------------------------------------------------------


def test_shipped_compendium_loads_into_unique_sections_of_every_kind() -> None:
    """The sample compendium has 45+ sections, every kind, unique slugs, source 'starter'."""
    sections = load_path(COMPENDIUM_DIR)
    assert len(sections) >= 45
    assert {s.source for s in sections} == {"starter"}
    assert set(Counter(s.kind for s in sections)) == set(KINDS)
    slugs = [s.slug for s in sections]
    assert len(set(slugs)) == len(slugs)
    titles = {s.title for s in sections}
    assert {"Initiative", "Advantage and Disadvantage", "Prone"} <= titles
    for section in sections:
        words = len(section.body.split())
        assert 40 <= words <= 200, (section.title, words)


def test_shipped_compendium_answers_common_searches() -> None:
    """Words players search for appear in the sections they expect."""
    sections = _by_title(load_path(COMPENDIUM_DIR))
    assert "initiative" in sections["Initiative"].body.lower()
    assert "advantage" in sections["Advantage and Disadvantage"].body.lower()
    assert "prone" in sections["Prone"].body.lower()
    assert "grapple" in sections["Grappling"].body.lower()
    everything = {title: section.body.lower() for title, section in sections.items()}
    for word, kind in [("fireball", "spell"), ("goblin", "monster"), ("healing potion", "item")]:
        assert any(word in body and sections[title].kind == kind for title, body in everything.items()), word


def test_compendium_folder_holds_only_markdown() -> None:
    """No stray README or other file gets ingested by accident."""
    names = sorted(path.name for path in COMPENDIUM_DIR.iterdir())
    assert names == ["items.md", "lore.md", "monsters.md", "rules.md", "spells.md"]
