"""JSON API v1 for phone apps and mini programs: the same services and access function as the pages."""
