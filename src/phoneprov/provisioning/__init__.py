"""Services: orchestrate file and database I/O for every protocol."""
