"""The single table's layout: the one place its key prefixes and fixed keys are named.

The API (lib/ddb.py), the scripts and the stream Lambda all take these names from here; the
stream Lambda ships this file beside its handler (bin/aws/deploy packages it), so it needs
nothing but the standard library.

  group row    pk GRP#<owner user uuid>     sk <time of last message>
               message_group_uuid, message, and user_uuid/user_display_name/user_handle of the
               OTHER participant; read_up_to (the owner's read marker, a message's sk) and
               unread_count (the other's messages after it, up to this row's sk; absent: 0).
               The only items with `message_group_uuid`, so the GSI
               `message-group-sk-index` holds exactly the two rows of each group.
  message      pk MSG#<message_group_uuid>  sk <created time>
               message_uuid, message, and user_uuid/user_display_name/user_handle of the sender.
  group header pk GROUP#<message_group_uuid> sk GROUP
               participants: the two user uuids; profiles: each one's display_name and handle;
               first_message_uuid.
               Written once, first of a group's items: its conditional put is what makes two
               concurrent first messages create one group, and a consistent GetItem of it answers
               "who may read or post here".
  idempotency  pk IDEM#<user uuid>           sk <Idempotency-Key>
               fingerprint of the request, and the message it made (group, uuid, created time),
               written before that message; kept for a day (attribute expires_at, TTL).
  layout       pk META#layout                sk META
               version: 2 on a table whose every group has its header (made by this code, or
               brought there by bin/ddb/migrate).

Tables written by the bootcamp's week-5 backend hold groups without a header: a random uuid4
message_group_uuid, its two GRP# rows and its MSG# items. Until bin/ddb/migrate gives each its
header (and the pair's derived uuid an alias header, GROUP#<derived uuid> with
message_group_uuid = the old group), such a group's participants are its rows' owners, and a
first message to a user looks for an old group of the pair before creating one.
"""
from __future__ import annotations

GSI_NAME = "message-group-sk-index"
GROUP_PREFIX = "GRP#"
MESSAGE_PREFIX = "MSG#"
HEADER_PREFIX = "GROUP#"
HEADER_SK = "GROUP"
IDEMPOTENCY_PREFIX = "IDEM#"
LAYOUT_KEY = {"pk": "META#layout", "sk": "META"}
LAYOUT_VERSION = 2
# A row's unread_count counts up to this many: a badge shows "99+" past it, and counting further
# would read every unread message of a long-silent conversation on each move of its row.
UNREAD_CAP = 99
