"""Agents' grants, codes and tokens in the bridge's store, on a real SQLite file, without HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func, select, update

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge import campaigns
from ttrpg_mcp.bridge.auth import agent_grants
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store import BridgeStore, User, utcnow
from ttrpg_mcp.bridge.store.models import OAuthCode, OAuthPendingRequest, OAuthToken

CAMPAIGN = "camp_0123456789ab"
CLIENT = "client-1"
REDIRECT = "http://127.0.0.1:33418/callback"
_NOT_A_HASH = "not-an-argon2-hash"


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store: a GM and a player at one campaign, and one registered public client."""
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    with store.session() as db:
        for name in ("gm", "ann"):
            db.add(
                User(
                    id=f"usr_{name}",
                    name=name,
                    name_key=name,
                    display_name=name.title(),
                    password_hash=_NOT_A_HASH,
                )
            )
        db.flush()
        campaigns.create_campaign(db, CAMPAIGN, "Ashes of the Crown", "usr_gm")
        invite = campaigns.create_invite(db, CAMPAIGN, "player", "usr_gm")
        campaigns.join_with_code(db, invite.code, "usr_ann")
        agent_grants.register_client(
            db,
            {
                "client_id": CLIENT,
                "client_name": "Claude",
                "redirect_uris": [REDIRECT],
                "client_secret": "s3cret",
            },
        )
    yield store
    store.close()


def _request(store: BridgeStore) -> str:
    with store.session() as db:
        return agent_grants.start_request(
            db,
            client_id=CLIENT,
            redirect_uri=REDIRECT,
            redirect_uri_explicit=True,
            code_challenge="challenge",
            state="st",
            scopes=["mcp"],
            resource=None,
        )


def _approved_code(store: BridgeStore, role: str = "player") -> str:
    request_id = _request(store)
    with store.session() as db:
        target = agent_grants.approve(db, request_id, "usr_ann", CAMPAIGN, role)
    return parse_qs(urlparse(target).query)["code"][0]


def test_a_client_secret_is_kept_as_its_digest_only(store: BridgeStore) -> None:
    """The registered metadata comes back without the secret; the digest stands in for it."""
    with store.session(readonly=True) as db:
        found = agent_grants.client_info(db, CLIENT)
    assert found is not None
    metadata, digest = found
    assert "client_secret" not in metadata
    assert digest is not None
    assert digest != "s3cret"
    assert len(digest) == 64


def test_a_role_above_the_persons_own_is_refused_and_the_request_stays_open(store: BridgeStore) -> None:
    """ann is a player: gm is refused with her role in the data; player then succeeds."""
    request_id = _request(store)
    with pytest.raises(BridgeError) as refused, store.session() as db:
        agent_grants.approve(db, request_id, "usr_ann", CAMPAIGN, "gm")
    assert refused.value.code == "forbidden"
    assert refused.value.data == {"role": "gm", "your_role": "player"}
    with store.session() as db:
        target = agent_grants.approve(db, request_id, "usr_ann", CAMPAIGN, "player")
    assert parse_qs(urlparse(target).query)["state"] == ["st"]


def test_a_code_is_spent_once_and_a_second_use_revokes_its_grant(store: BridgeStore) -> None:
    """Trading a code issues tokens; presenting it again finds nothing and ends those tokens."""
    code = _approved_code(store)
    with store.session() as db:
        record = agent_grants.load_code(db, CLIENT, code)
        assert record is not None
        agent_grants.spend_code(db, code, record.grant_id)
        issued = agent_grants.issue_tokens(db, record.grant_id, 60, 600)
    with store.session() as db:
        assert agent_grants.check_access_token(db, issued.access_token).scope.role == "player"
    with store.session() as db:
        assert agent_grants.load_code(db, CLIENT, code) is None
    with pytest.raises(BridgeError) as refused, store.session(readonly=True) as db:
        agent_grants.check_access_token(db, issued.access_token)
    assert refused.value.code == "invalid_token"


def test_a_code_of_another_client_is_not_found(store: BridgeStore) -> None:
    """A code only loads for the client it was issued to."""
    code = _approved_code(store)
    with store.session(readonly=True) as db:
        assert agent_grants.load_code(db, "someone-else", code) is None


def test_an_expired_access_token_says_so(store: BridgeStore) -> None:
    """token_expired (refresh it), not invalid_token, once past its expiry."""
    code = _approved_code(store)
    with store.session() as db:
        record = agent_grants.load_code(db, CLIENT, code)
        assert record is not None
        issued = agent_grants.issue_tokens(db, record.grant_id, 60, 600)
        db.execute(update(OAuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(BridgeError) as refused, store.session(readonly=True) as db:
        agent_grants.check_access_token(db, issued.access_token)
    assert refused.value.code == "token_expired"


def test_purging_removes_only_what_has_expired(store: BridgeStore) -> None:
    """Expired codes, tokens and pending requests go; live ones stay."""
    live_code = _approved_code(store)
    _approved_code(store)
    _request(store)
    with store.session() as db:
        db.execute(
            update(OAuthCode)
            .where(OAuthCode.code_hash != secret_digest(live_code))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.execute(update(OAuthPendingRequest).values(expires_at=utcnow() - timedelta(seconds=1)))
    with store.session() as db:
        purged = agent_grants.purge_expired(db)
    with store.session(readonly=True) as db:
        codes = db.scalar(select(func.count()).select_from(OAuthCode))
        pending = db.scalar(select(func.count()).select_from(OAuthPendingRequest))
        assert agent_grants.load_code(db, CLIENT, live_code) is not None
    assert purged == 2
    assert codes == 1
    assert pending == 0
