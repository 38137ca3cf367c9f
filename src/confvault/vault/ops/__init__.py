"""The operations on an open vault: functions over a ``Session``, one module per job."""
