"""1.x's `tests/` package (its test consumers and configs), under another name.

Upstream's configs name `tests.consumers.forever_consumer:ForeverConsumer` and the like. A
package called `tests` here would be one more `tests` inside this repository's own `tests`
package, and whichever came first on sys.path would hide the other; so the shape is kept
(`legacy_tests.consumers.*`, `legacy_tests/integration/*.yml`) under a name of its own.
"""
