"""The conversation store: direct messages in one DynamoDB table, as the API and both Lambdas
use them. An adapter: it turns the domain's requests into items and writes in a safe order, and
the table's items back into the domain's values (domain/conversations.py).

store.py (what the API asks, put together from the parts below), participants.py (who takes part;
one cache), sending.py (patterns C and D: the write order), read_markers.py (markers and unread
counts in the rows), rows.py (reading the group rows), stream.py (the stream Lambda's row mover),
records.py (reading a stream record), events.py (a record's live events), layout.py (keys and
items), week5.py (old week-5 tables), table_setup.py (making the table). None imports the store, and
no two import each other (tests/fast/test_structure.py checks); docs/data-model.md tells the story.
"""
