"""The ports: what core needs from the outside world, as protocols, with
the values that cross them. Core calls these; the adapters (store/,
builds/, backends/) implement them; server.py plugs one into the other."""
