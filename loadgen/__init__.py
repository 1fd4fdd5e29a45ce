"""The load generator behind ``python manage.py loadtest`` (see docs/loadtest.md).

Modules:

- ``wsclient``: lean asyncio HTTP/1.1 and WebSocket clients (one Protocol object per socket).
- ``values``: valid answer values for every question kind, read from the ``state`` message.
- ``phones``: the simulated phones of one load-generator process (no Django in there, so worker
  processes start fast and stay small).
- ``stats``: percentiles and the answer -> stage bounds.
- ``procinfo``: server RSS / CPU from /proc.
- ``options``: what a run is asked to do, where it points, the error it stops with.
- ``runner``: the coordinator (the phases, the host client); ``workers`` its handles on the
  phones, here or in worker processes; ``stage`` a stage screen's socket.
- ``django_side``: everything done through Django (the throwaway event, host actions, reading
  the tally and the Answer rows), in the coordinator's one database thread.
- ``exactness``: every acknowledged answer counted once, on the stage, in Redis, in the rows.
- ``report``: the JSON report of a run; ``table`` renders its table.
- ``bench``: fresh servers, the load test and the baseline for one figure (docs/loadtest.md).
- ``stuffing``, ``wordflood``: abuse scripts against a running server (docs/reliability.md).
- ``baseline``: the bare Channels consumer the product is compared with.

Nothing here is imported by the server.
"""
