"""Blocking a user by handle, lifting a block, listing one's blocks; and the rule a send obeys."""
from __future__ import annotations

from typing import Any

from domain.errors import InvalidInput, NotFound, NotPermitted
from lib.blocks import BLOCKS_PER_USER, BlockCache
from lib.users import UserStore
from services.users_short import other_user


def _block_self() -> InvalidInput:
    return InvalidInput("block_self", detail="you cannot block yourself")


class BlockUser:
    @staticmethod
    def run(blocks: BlockCache, users: UserStore, caller: dict[str, Any], handle: str) -> dict[str, Any]:
        """{handle, display_name, blocked_at}: the block, made now or before."""
        other = other_user(users, caller, handle, _block_self())
        block = blocks.block(str(caller["uuid"]), str(other["uuid"]), most=BLOCKS_PER_USER)
        if block is None:  # the user went away meanwhile
            raise NotFound("user_not_found", detail="no user with that handle")
        if block["blocked_at"] is None:  # not made: the caller holds the most there may be
            raise InvalidInput("too_many_blocks", detail=f"one may block at most {BLOCKS_PER_USER:,} users")
        return {k: block[k] for k in ("handle", "display_name", "blocked_at")}


class UnblockUser:
    @staticmethod
    def run(blocks: BlockCache, users: UserStore, caller: dict[str, Any], handle: str) -> dict[str, str]:
        """{handle}: no block of that user is left (also when there was none)."""
        other = other_user(users, caller, handle, _block_self())
        blocks.unblock(str(caller["uuid"]), str(other["uuid"]))
        return {"handle": other["handle"]}


class Blocks:
    @staticmethod
    def run(blocks: BlockCache, caller: dict[str, Any]) -> list[dict[str, Any]]:
        """Whom the caller blocks, most recent first."""
        return blocks.blocked_by(str(caller["uuid"]))


def require_unblocked(blocks: BlockCache, sender: str, recipient: str) -> None:
    """A send from `sender` to `recipient` is refused while either blocks the other: the
    sender's own block first (they lift it), then the recipient's (which the sender is not told
    as such: the recipient is "unavailable")."""
    between = blocks.between(str(sender), str(recipient))
    if between.a_blocks_b:
        raise NotPermitted("recipient_blocked", detail="you block this user: unblock them first")
    if between.b_blocks_a:
        raise NotPermitted("recipient_unavailable", detail="this user cannot receive your messages")
