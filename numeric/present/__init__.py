"""Results as a person reads them (text), as JSON and as arrays."""
