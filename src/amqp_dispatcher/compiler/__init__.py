"""The amqp-dispatcher compiler: `dispatcher-build` and `amqp-dispatcher --validate`.

The pipeline reads top to bottom in pipeline.build(): source (YAML with positions) ->
validate (the JSON Schema) -> model (frozen objects, defaults) -> rules (what RabbitMQ would
refuse) and imports (the consumer contract, in a child process) -> render (the package).
output.py writes it atomically; cli.py and legacy_cli.py are the command lines. Installed with
the `build` extra; the runtime never imports this package.
"""
