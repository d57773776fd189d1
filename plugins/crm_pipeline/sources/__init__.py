"""Source systems: read records from file drops and databases, one module each."""
