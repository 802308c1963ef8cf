"""Every write and state transition of the catalog."""
