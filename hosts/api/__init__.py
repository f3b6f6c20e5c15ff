"""REST API of the host registry: register, list, read, probe again."""
