"""Connect: data stores and zero-copy links to their objects."""
