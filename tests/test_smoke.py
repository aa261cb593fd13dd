from lib.ddb import Ddb, group_uuid_for
from lib.db import Db, template


def test_seeded_stack_has_users_and_conversation(settings):
    db = Db(settings)
    try:
        a = db.query_object_json(template("users", "short"), {"handle": "andrewbrown"})
        b = db.query_object_json(template("users", "short"), {"handle": "bayko"})
    finally:
        db.close()
    page = Ddb(settings).messages_page(group_uuid_for(a["uuid"], b["uuid"]), 100)
    assert len(page.items) >= 20
