"""Reading usage-event files, validating events and storing them in bulk."""
