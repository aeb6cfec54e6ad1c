# Stubs of the parts of pika 1.4 that amqp_dispatcher.runtime.pika_transport calls, and only those.
# pika ships no stubs; the signatures are copied from pika 1.4's own annotations and docstrings.
# Constructors of classes that pika builds for us (channels, base connections, frames' methods)
# are left out.
# Check against the installed pika with:
#   MYPYPATH=stubs .venv/bin/python -m mypy.stubtest pika --ignore-missing-stub
# which reports only those left-out constructors.
from pika.connection import ConnectionParameters as ConnectionParameters
from pika.connection import SSLOptions as SSLOptions
from pika.credentials import PlainCredentials as PlainCredentials
from pika.spec import BasicProperties as BasicProperties
