"""ecoledger: the system of record of a service ecosystem's money."""

__version__ = "0.1.0"
