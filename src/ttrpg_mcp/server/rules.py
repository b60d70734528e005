"""The rules and lore index: import documents, search them with BM25, read a section whole.

Search runs on SQLite's FTS5 (see the initial migration), ranked by BM25 with the title
weighted above the heading trail and the body, so "Prone" finds the condition before every
rule that mentions falling prone. Free text from a user or a model is never passed to FTS5
as query syntax: it is cut into words, each quoted, so that stray quotes, ``NEAR`` or ``-``
cannot break the query. All words must match; if none does, any word may.

On PostgreSQL (no FTS5) the same search runs on the sections' weighted ``tsvector`` column and
its GIN index (revision 0004): ``ts_rank`` with the same title, trail and body weights ranks
the hits, ``ts_headline`` cuts the snippet with the same ``**`` marks, and each word becomes its
own ``plainto_tsquery``, joined by AND (then OR), so no user text is read as query syntax.
The results have the same shape on both. The engines' raw relevance differs in scale (BM25
against ts_rank), so each hit's ``score`` is its relevance relative to the best hit of the same
search: 1.0 for the best, down towards 0 for the weakest, on either engine (:func:`_relative`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Row, TextClause, delete, func, insert, select, text
from sqlalchemy.orm import Session

from ttrpg_mcp.server.errors import InvalidInputError, NotFoundError
from ttrpg_mcp.server.ingest import KINDS, Section, load_path
from ttrpg_mcp.server.store.models import RuleSection, RuleSource, utcnow
from ttrpg_mcp.server.views import SearchHit, SearchResults, SourceList, SourceView

__all__ = [
    "COMPENDIUM_SOURCE",
    "ensure_compendium",
    "fingerprint",
    "get_section",
    "import_sections",
    "list_sources",
    "search",
    "section_uri",
]

COMPENDIUM_SOURCE = "starter"
_MAX_RESULTS = 50
_MAX_QUERY_WORDS = 32
# Relative BM25 weights of the FTS columns (title, path, body).
_WEIGHTS = (10.0, 3.0, 1.0)
# The same weights for ts_rank, whose array runs {D, C, B, A}: body C, trail B, title A.
_PG_WEIGHTS = "{0, 0.1, 0.3, 1.0}"
_PG_CONFIG = "english"
_WORD = re.compile(r"\w+", re.UNICODE)
_SNIPPET_TOKENS = 24


def section_uri(source: str, slug: str) -> str:
    return f"rules://{source}/{slug}"


def fingerprint(sections: Sequence[Section]) -> str:
    """A digest of what an import would write, to skip re-indexing an unchanged source."""
    digest = hashlib.sha256()
    for section in sections:
        for part in (section.source, section.slug, section.title, section.kind, section.path, section.body):
            digest.update(part.encode())
            digest.update(b"\0")
    return digest.hexdigest()


def import_sections(
    db: Session, sections: Sequence[Section], *, title: str = "", origin: str = "", gm_only: bool = False
) -> dict[str, int]:
    """Replace each source named in ``sections`` with the given sections; counts per source.

    ``gm_only`` marks the sources as GM material (an adventure module): players' searches,
    ``list_sources`` and ``rules://`` reads leave them out.
    """
    by_source: dict[str, list[Section]] = {}
    for section in sections:
        by_source.setdefault(section.source, []).append(section)
    counts: dict[str, int] = {}
    for source, items in by_source.items():
        db.execute(delete(RuleSection).where(RuleSection.source == source))
        db.execute(delete(RuleSource).where(RuleSource.slug == source))
        db.add(
            RuleSource(
                slug=source,
                title=title or source,
                origin=origin,
                fingerprint=fingerprint(items),
                section_count=len(items),
                gm_only=gm_only,
                imported_at=utcnow(),
            )
        )
        db.flush()
        db.execute(
            insert(RuleSection),
            [
                {
                    "source": s.source,
                    "slug": s.slug,
                    "title": s.title,
                    "kind": s.kind,
                    "path": s.path,
                    "body": s.body,
                }
                for s in items
            ],
        )
        counts[source] = len(items)
    return counts


def _compendium_dir() -> Path:
    return Path(str(resources.files("ttrpg_mcp.server") / "compendium"))


def ensure_compendium(db: Session) -> bool:
    """Index the bundled starter compendium unless this exact version already is; True if it ran."""
    sections = load_path(_compendium_dir(), source=COMPENDIUM_SOURCE)
    current = db.get(RuleSource, COMPENDIUM_SOURCE)
    if current is not None and current.fingerprint == fingerprint(sections):
        return False
    import_sections(db, sections, title="Starter Compendium", origin="bundled with ttrpg-mcp")
    return True


def _match_expression(query: str, *, any_word: bool) -> str:
    words = _WORD.findall(query)[:_MAX_QUERY_WORDS]
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    return (" OR " if any_word else " ").join(quoted)


def _hidden_sources(db: Session, with_gm_material: bool) -> list[str]:
    """The sources a viewer may not see: the GM-only ones, unless the viewer is a GM."""
    if with_gm_material:
        return []
    return list(db.scalars(select(RuleSource.slug).where(RuleSource.gm_only.is_(True))))


def _fts5_statements(filters: str) -> tuple[TextClause, TextClause]:
    """The hits and the count on SQLite's FTS5 table; ``:match`` is the FTS5 query."""
    weights = ", ".join(str(w) for w in _WEIGHTS)
    sql = text(
        f"SELECT s.source, s.slug, s.title, s.kind, s.path, "  # noqa: S608  # only constants are formatted in
        f"snippet(rule_sections_fts, 2, '**', '**', '…', {_SNIPPET_TOKENS}) AS snippet, "
        f"bm25(rule_sections_fts, {weights}) AS rank "
        f"FROM rule_sections_fts JOIN rule_sections s ON s.id = rule_sections_fts.rowid "
        f"WHERE rule_sections_fts MATCH :match{filters} ORDER BY rank LIMIT :limit"
    )
    count_sql = text(
        "SELECT count(*) FROM rule_sections_fts JOIN rule_sections s ON s.id = rule_sections_fts.rowid "  # noqa: S608
        f"WHERE rule_sections_fts MATCH :match{filters}"
    )
    return sql, count_sql


def _postgres_statements(
    query: str, filters: str, params: dict[str, object], *, any_word: bool
) -> tuple[TextClause, TextClause]:
    """The hits and the count on PostgreSQL's tsvector column; the words go in ``params``."""
    words = _WORD.findall(query)[:_MAX_QUERY_WORDS]
    parts = []
    for index, word in enumerate(words):
        params[f"word{index}"] = word
        parts.append(f"plainto_tsquery('{_PG_CONFIG}', :word{index})")
    tsquery = (" || " if any_word else " && ").join(parts)
    # The headline is cut for the page of hits only, after ranking: it reads the whole body.
    sql = text(
        "SELECT ranked.source, ranked.slug, ranked.title, ranked.kind, ranked.path, ranked.rank, "  # noqa: S608  # only constants and placeholders are formatted in
        f"ts_headline('{_PG_CONFIG}', ranked.body, ranked.q, "
        f"'StartSel=**, StopSel=**, MaxWords={_SNIPPET_TOKENS}, MinWords=8, "
        "MaxFragments=1, FragmentDelimiter=…') AS snippet "
        "FROM (SELECT s.id, s.source, s.slug, s.title, s.kind, s.path, s.body, q.q, "
        f"ts_rank('{_PG_WEIGHTS}', s.search, q.q) AS rank "
        f"FROM rule_sections s, (SELECT {tsquery} AS q) AS q "
        f"WHERE s.search @@ q.q{filters} ORDER BY rank DESC, s.id LIMIT :limit) AS ranked "
        "ORDER BY ranked.rank DESC, ranked.id"
    )
    count_sql = text(
        f"SELECT count(*) FROM rule_sections s, (SELECT {tsquery} AS q) AS q "  # noqa: S608
        f"WHERE s.search @@ q.q{filters}"
    )
    return sql, count_sql


def search(
    db: Session,
    query: str,
    *,
    source: str | None = None,
    kind: str | None = None,
    limit: int = 10,
    with_gm_material: bool = True,
) -> SearchResults:
    """The best sections for ``query``; without ``with_gm_material``, GM-only sources stay out."""
    if not _WORD.search(query):
        raise InvalidInputError("the query needs at least one word")
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {list(KINDS)}, not {kind!r}")
    if not 1 <= limit <= _MAX_RESULTS:
        raise InvalidInputError(f"limit must be from 1 to {_MAX_RESULTS}, not {limit}")
    hidden = _hidden_sources(db, with_gm_material)
    if source is not None and (db.get(RuleSource, source) is None or source in hidden):
        raise NotFoundError(f"no source {source!r}; list_sources shows what is indexed")
    filters = ""
    params: dict[str, object] = {"limit": limit}
    for index, slug in enumerate(hidden):
        filters += f" AND s.source != :hidden{index}"
        params[f"hidden{index}"] = slug
    if source is not None:
        filters += " AND s.source = :source"
        params["source"] = source
    if kind is not None:
        filters += " AND s.kind = :kind"
        params["kind"] = kind
    postgres = db.get_bind().dialect.name == "postgresql"
    rows: list[Row[Any]] = []
    total = 0
    for any_word in (False, True):
        if postgres:
            sql, count_sql = _postgres_statements(query, filters, params, any_word=any_word)
        else:
            sql, count_sql = _fts5_statements(filters)
            params["match"] = _match_expression(query, any_word=any_word)
        rows = list(db.execute(sql, params))
        if rows:
            total = db.scalar(count_sql, params) or 0
            break
    best = max((_raw_relevance(row, postgres=postgres) for row in rows), default=0.0)
    hits = [
        SearchHit(
            source=row.source,
            section=row.slug,
            title=row.title,
            kind=row.kind,
            path=row.path,
            snippet=row.snippet,
            score=_relative(_raw_relevance(row, postgres=postgres), best),
            uri=section_uri(row.source, row.slug),
        )
        for row in rows
    ]
    return SearchResults(query=query, total=total, hits=hits)


def _raw_relevance(row: Row[Any], *, postgres: bool) -> float:
    """The engine's own relevance, higher is better (FTS5's ``rank`` is BM25 negated)."""
    return float(row.rank) if postgres else -float(row.rank)


def _relative(relevance: float, best: float) -> float:
    """A hit's relevance as a fraction of the best hit's: one scale whatever the engine.

    Raw BM25 runs to several units and ts_rank to a fraction of one, so raw scores from a
    SQLite and a PostgreSQL store could not be compared or thresholded alike; relative to the
    best hit they can (1.0 for the best, between 0 and 1 for the rest).
    """
    if best <= 0:  # no term carried any weight: every hit is as good as the best
        return 1.0
    return round(max(relevance, 0.0) / best, 4)


def list_sources(db: Session, *, with_gm_material: bool = True) -> SourceList:
    """The indexed sources; without GM material, no GM-only source and no import path."""
    kinds: dict[str, dict[str, int]] = {}
    for source, kind, count in db.execute(
        select(RuleSection.source, RuleSection.kind, func.count()).group_by(
            RuleSection.source, RuleSection.kind
        )
    ):
        kinds.setdefault(source, {})[kind] = count
    views = []
    query = select(RuleSource).order_by(RuleSource.slug)
    if not with_gm_material:
        query = query.where(RuleSource.gm_only.is_(False))
    for row in db.scalars(query):
        view = SourceView.model_validate(row)
        view.kinds = kinds.get(row.slug, {})
        if not with_gm_material:
            # ``origin`` is the path of the file the GM imported: their machine's layout, not the table's.
            view.origin = ""
        views.append(view)
    return SourceList(sources=views)


def get_section(db: Session, source: str, slug: str, *, with_gm_material: bool = True) -> RuleSection:
    section = db.scalar(select(RuleSection).where(RuleSection.source == source, RuleSection.slug == slug))
    if section is None or source in _hidden_sources(db, with_gm_material):
        raise NotFoundError(f"no section {slug!r} in source {source!r}")
    return section
