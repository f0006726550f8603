"""IFRS 15 revenue recognition and the controller's period close (issue 7): standalone
selling prices (ssp), allocation, schedules, the close and its reopening. Period locking
itself is ``ledger.periods``."""
