"""amqp-dispatcher: a compiler (`amqp_dispatcher.compiler`) and a runtime (`amqp_dispatcher.runtime`)
for RabbitMQ consumer services. See docs/architecture.md for the map."""
