"""Every FastAPI dependency of the gateway, in one place. Routes take these and nothing else."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import User, hash_token, user_for_token_hash
from services.gateway.coalesce import ReadCoalescer
from services.gateway.token_cache import VerifiedTokens
from shared.broker import Bus
from shared.mongo import Document
from shared.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="A token issued by `python -m services.gateway.tokens create`")


# Plain accessors are `async def` on purpose: FastAPI runs a sync dependency in a worker thread,
# and that hop cost every request a thread hand-off under load.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncDatabase[Document]:
    db: AsyncDatabase[Document] = request.app.state.db
    return db


async def get_bus(request: Request) -> Bus:
    bus: Bus = request.app.state.bus
    return bus


async def get_reads(request: Request) -> ReadCoalescer:
    reads: ReadCoalescer = request.app.state.reads
    return reads


SettingsDep = Annotated[Settings, Depends(get_settings)]
Db = Annotated[AsyncDatabase[Document], Depends(get_db)]
BusDep = Annotated[Bus, Depends(get_bus)]
Reads = Annotated[ReadCoalescer, Depends(get_reads)]


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    # The database and the coalescer come straight off app.state rather than through `Db` and
    # `Reads`: every request authenticates, and each dependency FastAPI solves costs CPU on every
    # request, a sizeable share of what the bare app spends on a whole one (docs/benchmarks.md,
    # "Gateway load").
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", {"WWW-Authenticate": "Bearer"})
    token_hash = hash_token(credentials.credentials)
    state = request.app.state
    db: AsyncDatabase[Document] = state.db
    reads: ReadCoalescer = state.reads
    # Verified tokens are remembered while the tokens collection is watched (token_cache.py), so
    # most requests authenticate without a round trip; a miss still joins an identical read in flight.
    # An app assembled without create_app (a test's router, a tool) has no cache and reads each time.
    tokens: VerifiedTokens | None = getattr(state, "tokens", None)

    async def read() -> User | None:
        return await reads.read(("token", token_hash), lambda: user_for_token_hash(db, token_hash))

    user = await (read() if tokens is None else tokens.lookup(token_hash, read))
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked token", {"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[User, Depends(current_user)]
