"""Jobs: long work (verify, exports; later imports, billing, clearing, closes) as rows in
ecoledger's own jobs table, delivered to workers by Celery.

* ``store``: the jobs table and every state change of a job (pure SQLAlchemy);
* ``kinds``: what each kind of job does, its parameters and its dedup key;
* ``runner``: runs one job: claim, heartbeat, progress, cancellation, result;
* ``celery_app``: the Celery adapter, one task per kind, the reaper and the schedule.

Only ``celery_app`` imports Celery.
"""
