"""One module per benchmark. Each registers itself with `bench.registry.register`.

Modules here are imported before Django is set up: import Django, the console's models and
anything that needs a database inside the benchmark function, not at the top of the module.
"""
