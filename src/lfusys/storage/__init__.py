"""Storage ports (the interfaces domain code sees) and their adapters."""
