"""Operator commands behind the console command: serve, login, doctor."""
