"""Named limits. Every batch, page, upload and loop in ecoledger is bounded by one of these.

Units are in the names. They protect memory and the database from hostile or broken input;
raising one is a deliberate decision, so each says why it has its value.
"""

# Entries validated and written per database round (one executemany per table). Large enough
# to amortise the per-statement cost, small enough that a batch's rows stay a few MB in memory.
BATCH_ENTRIES_MAX = 5_000

# One JSON line of the interchange format. A 4-posting entry is ~600 bytes; 1 MiB leaves room
# for entries with many postings while a 10 GB line without a newline cannot exhaust memory.
LINE_BYTES_MAX = 1_048_576

# Postings in one entry. A month-end aggregate entry may carry many lines; beyond this it
# should be split into several entries.
POSTINGS_PER_ENTRY_MAX = 1_000

# Caller-supplied external entry ids (the idempotency key).
ENTRY_ID_CHARS_MAX = 200

# Free text on an entry. Descriptions are labels, not documents.
DESCRIPTION_CHARS_MAX = 1_000

# Source reference (type, id) of an entry.
SOURCE_TYPE_CHARS_MAX = 64
SOURCE_ID_CHARS_MAX = 200

# Dimensions on a posting and metadata keys on an entry.
DIMENSIONS_PER_POSTING_MAX = 32
METADATA_KEYS_MAX = 32
DIMENSION_KEY_CHARS_MAX = 63
DIMENSION_VALUE_CHARS_MAX = 200
METADATA_VALUE_CHARS_MAX = 1_000

# Rejections kept in a posting report; the counts stay exact beyond this.
REJECTIONS_REPORTED_MAX = 1_000

# Bound parameters in one IN (...) list: a whole batch's ids in one query. SQLite's limit is
# 32,766 (since 3.32); PostgreSQL's is 65,535.
SQL_IN_PARAMS_MAX = 5_000

# A usage upload through the API is imported while the request waits: 16 MiB is about
# 80,000 lines, well inside the server's request timeout. Larger files go through
# `ecoledger import usage`, which streams any size, or are split.
USAGE_UPLOAD_BYTES_MAX = 16 * 1024 * 1024
# A usage file uploaded for a background import (POST /usage/uploads): streamed to the
# data directory, then imported by a job. About 5 million lines.
USAGE_FILE_UPLOAD_BYTES_MAX = 1024 * 1024 * 1024

# Accounts in one chart-of-accounts template, companies listed per page.
CHART_ACCOUNTS_MAX = 500

# Violations that `ecoledger verify` lists per check; the count stays exact beyond this.
VIOLATIONS_REPORTED_MAX = 200

# Rows fetched per round trip when streaming the journal (verify, export, statements).
STREAM_ROWS_PER_FETCH = 10_000

# SQLite: how long a writer waits for another writer's lock before giving up.
SQLITE_BUSY_TIMEOUT_SECONDS = 60

# Jobs listed by `ecoledger job list` (newest first).
JOBS_LISTED_MAX = 200

# Runs of one job before the reaper gives up re-queuing it (each crash or lost worker is
# one run); `ecoledger job retry` starts the count again.
JOB_ATTEMPTS_MAX = 5

# A job's result summary as stored (JSON); verify's lists at most VIOLATIONS_REPORTED_MAX
# violations per check, far below this.
JOB_RESULT_BYTES_MAX = 1_048_576

# Progress is written to the jobs table at most this often; cancellation is seen as soon.
JOB_PROGRESS_WRITE_SECONDS = 0.5

# Revenue schedules: the months from a contract's start to the last month scheduled (its
# end, or the day asked for). A contract or request beyond it is refused with the field.
REVREC_SCHEDULE_MONTHS_MAX = 120
