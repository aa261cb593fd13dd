"""The domain: Cruddur's rules as pure code, with no I/O (nothing here reads or writes a table,
a database, a pool or the clock's neighbours beyond the time itself).

conversations.py (what a conversation, a message and a page are), contract.py (how they read as
the HTTP contract's JSON), unread.py (what counts as unread, and the cap), live_events.py (which
live events a change makes, and for whom), times.py (the one time format: strings sort in time
order), identity.py (who may become a user, with which handle and name), visible_text.py (what a
reader can see in a text), cursors.py (signed pagination cursors) and errors.py (the errors every
layer raises, by meaning).

The adapters (lib/) translate the outside world into these values and errors; the services
(services/) apply the rules through the adapters. The domain imports neither
(tests/fast/test_structure.py checks), so the Lambdas ship the parts they need as they are.
"""
