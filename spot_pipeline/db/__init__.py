"""Infrastructure of the market database: engines, the resource, the schema, dialect differences,
write locks and inspection. Domain SQL lives with its domain, never here."""
