"""`amqpdispatcher`, the import name of amqp-dispatcher 0.x and 1.x, kept as a thin alias.

Their entry points keep working: `python -m amqpdispatcher.dispatcher --config config.yml` and
`amqpdispatcher.dispatcher:main` run `amqp-dispatcher`. Nothing else of the old modules is
here: consumers no longer import from this package (docs/migrating.md).
"""
