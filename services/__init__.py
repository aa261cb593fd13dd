"""The use cases, one stateless class per action (CreateMessage, Messages, MessageGroups, ...).

Each `run` takes the parts it uses and nothing else (the conversation store, the users' store,
the cursors...: services/bootstrap.py builds them once per app, and routes/ hands each service its
own), so a signature says what a use case touches and the fast tests give it in-memory twins.
They speak the domain: they ask the conversation store (lib/conversations/store.py) for things
like "send this text to that user" and get back the domain's values (domain/conversations.py) and
errors (domain/errors.py), never items, keys or DynamoDB options (tests/fast/test_structure.py
checks). They check the request, decide who may do what and know nothing of HTTP.
"""
