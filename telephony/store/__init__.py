"""Persistence for calls and everything they leave behind: SQLite in a file by default, PostgreSQL by URL.

    store = Store(sqlite_url(settings.data_dir))   # or Store("postgresql://user:pw@host/db")
    store.migrate()                                # once at start-up; a no-op when up to date

Every method is synchronous and thread-safe: call it from a worker thread (`asyncio.to_thread`), never from
the event loop. Every Twilio callback write is idempotent on its SIDs.
"""

from telephony.store.after_handoff import DeliveryRow
from telephony.store.database import sqlite_url
from telephony.store.errors import StoreError
from telephony.store.repository import Store

__all__ = ["DeliveryRow", "Store", "StoreError", "sqlite_url"]
