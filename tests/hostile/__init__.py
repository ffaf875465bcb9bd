"""A hostile web on loopback: every way a server can answer badly, one fictional site each."""
