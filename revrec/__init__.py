"""IFRS 15 revenue recognition and the controller's period close (issue 7). Not built yet;
period closing itself is ``ledger.periods``."""
