"""store.synthetic: smoke-test leftovers are found and removed, real rows never touched."""

from __future__ import annotations

from datetime import timedelta

from tests.support.helpers import table_rows
from tests.support.rows import WebhookEvent, event_row, insert_rows
from timedify.db import make_engine
from timedify.ingest.webhooks import SYNTHETIC_SHOP_DOMAIN
from timedify.store import synthetic


def test_states_and_remove_only_see_synthetic_events(db_url: str) -> None:
    smoke = {**event_row(age=timedelta(minutes=1), shop=SYNTHETIC_SHOP_DOMAIN), "synthetic": True}
    real = event_row(age=timedelta(minutes=1))
    insert_rows(db_url, WebhookEvent, [smoke, real])
    ids = [smoke["webhook_id"], real["webhook_id"]]
    engine = make_engine(db_url)
    with engine.begin() as conn:
        assert synthetic.states(conn, ids) == {smoke["webhook_id"]: "processed"}
        assert synthetic.remove(conn, ids, SYNTHETIC_SHOP_DOMAIN) == 1
        assert synthetic.remove(conn, ids, SYNTHETIC_SHOP_DOMAIN) == 0
    engine.dispose()
    assert [row["webhook_id"] for row in table_rows(db_url, WebhookEvent)] == [real["webhook_id"]]
