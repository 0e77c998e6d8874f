"""Services: the rules of each record type, called by the HTTP API, the CLI and the demo loader."""
