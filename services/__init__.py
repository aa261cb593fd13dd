"""The use cases, one stateless class per action (CreateMessage, Messages, MessageGroups, ...).

They speak the domain: they ask the adapters of lib/ for things like "put these unless their keys
exist" and get back domain outcomes (KeyTaken, WriteConflict, StoreUnavailable, ...), never
botocore's exceptions or wire-format dicts. They raise the errors of lib/errors.py and know
nothing of HTTP; routes/ calls them.
"""
