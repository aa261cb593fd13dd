"""The use cases, one stateless class per action (CreateMessage, Messages, MessageGroups, ...).

They speak the domain: they ask the conversation store (lib/conversations) for things like "send
this text to that user" or "this conversation's messages" and get back domain values (Message,
Conversation, Sent) and errors, never items, keys or DynamoDB options (tests/test_structure.py
checks). They check the request, decide who may do what, raise the errors of lib/errors.py and
know nothing of HTTP; routes/ calls them.
"""
