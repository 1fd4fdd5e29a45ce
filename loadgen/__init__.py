"""The load generator behind ``python manage.py loadtest`` (see docs/loadtest.md).

Modules:

- ``wsclient``: lean asyncio HTTP/1.1 and WebSocket clients (one Protocol object per socket).
- ``values``: valid answer values for every question kind, read from the ``state`` message.
- ``phones``: the simulated phones of one load-generator process (no Django in there, so worker
  processes start fast and stay small).
- ``stats``: percentiles and the answer -> stage bounds.
- ``procinfo``: server RSS / CPU from /proc.
- ``runner``: the coordinator (Django side: the throwaway event, the stage and host clients,
  the exactness check) and the report; ``report`` renders the table.
- ``baseline``: the bare Channels consumer the product is compared with.

Nothing here is imported by the server.
"""
